{%- set key = [
    'period', 'provider_id', 'account_id', 'region', 'service',
    'environment', 'tag_key', 'tag_value',
] -%}
{%- if costsync.workspaces('levelfour') -%}
    {%- set key = ['workspace'] + key -%}
{%- endif -%}

with loaded as (
    {{ costsync.union_workspaces(
        'levelfour', 'spending_breakdown',
        ['period', 'provider_id', 'account_id', 'region', 'service', 'environment',
         'tag_key', 'tag_value', 'cost', 'previous_cost', 'change_percentage'],
        optional={'_costsync_restated_at': costsync.type_timestamp_tz()},
    ) }}
),

breakdown as (
    select
        loaded.*,
        {{ costsync.period_start('period') }} as period_start
    from loaded
)

select
    {{ costsync.surrogate_key(key) }} as breakdown_id,
    cast(period as {{ dbt.type_string() }}) as period,
    period_start,
    {{ costsync.add_months('period_start', 1) }} as period_end,
    cast(provider_id as {{ dbt.type_string() }}) as provider,
    cast(account_id as {{ dbt.type_string() }}) as account_id,
    cast(region as {{ dbt.type_string() }}) as region,
    cast(service as {{ dbt.type_string() }}) as service,
    cast(environment as {{ dbt.type_string() }}) as environment,
    cast(tag_key as {{ dbt.type_string() }}) as tag_key,
    cast(tag_value as {{ dbt.type_string() }}) as tag_value,
    {{ costsync.money('cost') }} as cost,
    {{ costsync.money('previous_cost') }} as previous_cost,
    change_percentage,
    _costsync_restated_at as restated_at,
    workspace,
    dataset
from breakdown
