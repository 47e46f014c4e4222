select
    cast(id as {{ dbt.type_string() }}) as line_item_id,
    cast(usage_date as date) as usage_date,
    cast(provider_type as {{ dbt.type_string() }}) as provider,
    cast(provider_service as {{ dbt.type_string() }}) as service,
    {{ costsync.money('net_amount_usd') }} as net_amount_usd,
    cast(currency_original as {{ dbt.type_string() }}) as original_currency,
    cast(project_id as {{ dbt.type_string() }}) as project_id,
    cast(user_email as {{ dbt.type_string() }}) as user_email
from {{ source('stackspend', 'line_items') }}
