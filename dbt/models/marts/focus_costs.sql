{#- One row per charge from both vendors, in FOCUS columns (quoted: Postgres keeps the case). -#}
{%- set q = adapter.quote -%}

with stackspend as (
    select
        {{ costsync.utc_midnight('usage_date') }} as charge_period_start,
        {{ costsync.utc_midnight(costsync.add_days('usage_date', 1)) }} as charge_period_end,
        {{ costsync.month_start('usage_date') }} as billing_month,
        net_amount_usd as cost,
        cast('USD' as {{ dbt.type_string() }}) as billing_currency,
        provider,
        service,
        project_id as sub_account_id,
        cast(null as {{ dbt.type_string() }}) as region_id,
        {{ costsync.tags_json() }} as tags,
        cast('stackspend' as {{ dbt.type_string() }}) as source,
        line_item_id as source_id,
        user_email,
        cast(null as {{ dbt.type_string() }}) as environment,
        original_currency
    from {{ ref('stg_stackspend__line_items') }}
),

levelfour as (
    select
        {{ costsync.utc_midnight('period_start') }} as charge_period_start,
        {{ costsync.utc_midnight('period_end') }} as charge_period_end,
        period_start as billing_month,
        cost,
        cast({{ costsync.sql_string(var('levelfour_billing_currency')) }}
            as {{ dbt.type_string() }}) as billing_currency,
        provider,
        service,
        account_id as sub_account_id,
        region as region_id,
        {{ costsync.tags_json('tag_key', 'tag_value') }} as tags,
        cast('levelfour' as {{ dbt.type_string() }}) as source,
        breakdown_id as source_id,
        cast(null as {{ dbt.type_string() }}) as user_email,
        environment,
        cast(null as {{ dbt.type_string() }}) as original_currency
    from {{ ref('stg_levelfour__spending_breakdown') }}
),

charges as (
    select * from stackspend
    union all
    select * from levelfour
)

select
    charge_period_start as {{ q('ChargePeriodStart') }},
    charge_period_end as {{ q('ChargePeriodEnd') }},
    {{ costsync.utc_midnight('billing_month') }} as {{ q('BillingPeriodStart') }},
    {{ costsync.utc_midnight(costsync.add_months('billing_month', 1)) }}
        as {{ q('BillingPeriodEnd') }},
    {{ costsync.focus_charge_category('cost') }} as {{ q('ChargeCategory') }},
    {{ costsync.money('cost') }} as {{ q('BilledCost') }},
    {{ costsync.money('cost') }} as {{ q('EffectiveCost') }},
    billing_currency as {{ q('BillingCurrency') }},
    {{ costsync.focus_provider_name('provider') }} as {{ q('ProviderName') }},
    service as {{ q('ServiceName') }},
    {{ costsync.focus_service_category('provider', 'service') }} as {{ q('ServiceCategory') }},
    sub_account_id as {{ q('SubAccountId') }},
    region_id as {{ q('RegionId') }},
    tags as {{ q('Tags') }},
    source as {{ q('x_Source') }},
    source_id as {{ q('x_SourceId') }},
    provider as {{ q('x_ProviderId') }},
    user_email as {{ q('x_UserEmail') }},
    environment as {{ q('x_Environment') }},
    original_currency as {{ q('x_OriginalCurrency') }}
from charges
