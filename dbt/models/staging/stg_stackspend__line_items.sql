with line_items as (
    {{ costsync.union_workspaces(
        'stackspend', 'line_items',
        ['id', 'usage_date', 'provider_type', 'provider_service', 'net_amount_usd',
         'currency_original', 'project_id', 'user_email'],
        optional={'_costsync_restated_at': costsync.type_timestamp_tz()},
    ) }}
)

select
    cast(id as {{ dbt.type_string() }}) as line_item_id,
    cast(usage_date as date) as usage_date,
    cast(provider_type as {{ dbt.type_string() }}) as provider,
    cast(provider_service as {{ dbt.type_string() }}) as service,
    {{ costsync.money('net_amount_usd') }} as net_amount_usd,
    cast(currency_original as {{ dbt.type_string() }}) as original_currency,
    cast(project_id as {{ dbt.type_string() }}) as project_id,
    cast(user_email as {{ dbt.type_string() }}) as user_email,
    _costsync_restated_at as restated_at,
    workspace,
    dataset
from line_items
