{#-
    No two rows share the same values in `columns`, NULLs counting as equal
    (GROUP BY puts NULLs together), as costsync's null-safe merge keys do.
-#}
{% test unique_combination(model, columns) %}
    {%- set quoted = [] -%}
    {%- for column in columns -%}
        {%- do quoted.append(adapter.quote(column)) -%}
    {%- endfor %}
    select {{ quoted | join(', ') }}, count(*) as occurrences
    from {{ model }}
    group by {{ quoted | join(', ') }}
    having count(*) > 1
{% endtest %}
