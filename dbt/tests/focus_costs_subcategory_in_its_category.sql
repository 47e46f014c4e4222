{#- Every ServiceSubcategory is one FOCUS 1.2 lists under the row's ServiceCategory. -#}
{%- set q = adapter.quote -%}

select {{ q('ServiceCategory') }}, {{ q('ServiceSubcategory') }}, count(*) as charges
from {{ ref('focus_costs') }}
where not (
    {%- for category, subcategory in costsync.focus_category_pairs() %}
    ({{ q('ServiceCategory') }} = {{ costsync.sql_string(category) }}
        and {{ q('ServiceSubcategory') }} = {{ costsync.sql_string(subcategory) }})
    {%- if not loop.last %} or{% endif %}
    {%- endfor %}
)
group by {{ q('ServiceCategory') }}, {{ q('ServiceSubcategory') }}
