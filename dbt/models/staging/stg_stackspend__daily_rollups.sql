{%- set key = ['date', 'group_by', 'provider_type', 'service', 'category'] -%}
{%- if costsync.workspaces('stackspend') -%}
    {%- set key = ['workspace'] + key -%}
{%- endif -%}

with rollups as (
    {{ costsync.union_workspaces(
        'stackspend', 'daily_rollups',
        ['date', 'group_by', 'provider_type', 'service', 'category', 'cost_usd'],
    ) }}
)

select
    {{ costsync.surrogate_key(key) }} as rollup_id,
    cast({{ adapter.quote('date') }} as date) as usage_date,
    cast(group_by as {{ dbt.type_string() }}) as group_by,
    cast(provider_type as {{ dbt.type_string() }}) as provider,
    cast(service as {{ dbt.type_string() }}) as service,
    cast(category as {{ dbt.type_string() }}) as category,
    {{ costsync.stackspend_category_to_focus('category') }} as service_category,
    {{ costsync.money('cost_usd') }} as cost_usd,
    workspace,
    dataset
from rollups
