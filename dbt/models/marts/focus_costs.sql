{#-
    One row per charge from both vendors, in FOCUS 1.2 columns (quoted:
    Postgres keeps the case). Columns the APIs do not send are derived as the
    model's YAML describes.
-#}
{%- set q = adapter.quote -%}
{%- set text = dbt.type_string() -%}

with stackspend as (
    select
        {{ costsync.utc_midnight('usage_date') }} as charge_period_start,
        {{ costsync.utc_midnight(costsync.add_days('usage_date', 1)) }} as charge_period_end,
        {{ costsync.month_start('usage_date') }} as billing_month,
        net_amount_usd as cost,
        cast('USD' as {{ text }}) as billing_currency,
        cast('Days' as {{ text }}) as period_unit,
        provider,
        service,
        project_id as sub_account_id,
        cast(null as {{ text }}) as region_id,
        {{ costsync.tags_json() }} as tags,
        cast('stackspend' as {{ text }}) as source,
        line_item_id as source_id,
        user_email,
        cast(null as {{ text }}) as environment,
        original_currency,
        restated_at,
        workspace,
        dataset,
        coalesce(' for project ' || project_id, '') as description_detail
    from {{ ref('stg_stackspend__line_items') }}
),

levelfour as (
    select
        {{ costsync.utc_midnight('period_start') }} as charge_period_start,
        {{ costsync.utc_midnight('period_end') }} as charge_period_end,
        period_start as billing_month,
        cost,
        cast({{ costsync.sql_string(var('levelfour_billing_currency')) }}
            as {{ text }}) as billing_currency,
        cast('Months' as {{ text }}) as period_unit,
        provider,
        service,
        account_id as sub_account_id,
        region as region_id,
        {{ costsync.tags_json('tag_key', 'tag_value') }} as tags,
        cast('levelfour' as {{ text }}) as source,
        breakdown_id as source_id,
        cast(null as {{ text }}) as user_email,
        environment,
        cast(null as {{ text }}) as original_currency,
        restated_at,
        workspace,
        dataset,
        coalesce(' in ' || region, '')
            || coalesce(' for account ' || account_id, '')
            || coalesce(' (' || environment || ')', '') as description_detail
    from {{ ref('stg_levelfour__spending_breakdown') }}
),

charges as (
    select * from stackspend
    union all
    select * from levelfour
),

named as (
    select
        charges.*,
        {{ costsync.focus_charge_category('cost') }} as charge_category,
        {{ costsync.focus_provider_name('provider') }} as provider_name,
        {{ costsync.focus_service_category('provider', 'service') }} as service_category
    from charges
)

select
    charge_period_start as {{ q('ChargePeriodStart') }},
    charge_period_end as {{ q('ChargePeriodEnd') }},
    {{ costsync.utc_midnight('billing_month') }} as {{ q('BillingPeriodStart') }},
    {{ costsync.utc_midnight(costsync.add_months('billing_month', 1)) }}
        as {{ q('BillingPeriodEnd') }},
    charge_category as {{ q('ChargeCategory') }},
    {{ costsync.focus_charge_class(
        'restated_at', costsync.utc_midnight(costsync.add_months('billing_month', 1))
    ) }} as {{ q('ChargeClass') }},
    cast(
        coalesce(provider_name || ' ', '') || coalesce(service || ' ', '')
        || case when charge_category = 'Credit' then 'credit' else 'usage' end
        || description_detail
        as {{ text }}
    ) as {{ q('ChargeDescription') }},
    cast('Usage-Based' as {{ text }}) as {{ q('ChargeFrequency') }},
    {{ costsync.money('cost') }} as {{ q('BilledCost') }},
    {{ costsync.money('cost') }} as {{ q('EffectiveCost') }},
    {{ costsync.money('cost') }} as {{ q('ListCost') }},
    {{ costsync.money('cost') }} as {{ q('ContractedCost') }},
    billing_currency as {{ q('BillingCurrency') }},
    {{ costsync.decimal("case when charge_category = 'Usage' then 1 end") }}
        as {{ q('PricingQuantity') }},
    case when charge_category = 'Usage' then period_unit end as {{ q('PricingUnit') }},
    dataset as {{ q('BillingAccountId') }},
    coalesce(workspace, dataset) as {{ q('BillingAccountName') }},
    cast(null as {{ text }}) as {{ q('InvoiceId') }},
    provider_name as {{ q('InvoiceIssuerName') }},
    provider_name as {{ q('ProviderName') }},
    provider_name as {{ q('PublisherName') }},
    service as {{ q('ServiceName') }},
    service_category as {{ q('ServiceCategory') }},
    {{ costsync.focus_service_subcategory('provider', 'service', 'service_category') }}
        as {{ q('ServiceSubcategory') }},
    sub_account_id as {{ q('SubAccountId') }},
    sub_account_id as {{ q('SubAccountName') }},
    region_id as {{ q('RegionId') }},
    region_id as {{ q('RegionName') }},
    tags as {{ q('Tags') }},
    source as {{ q('x_Source') }},
    source_id as {{ q('x_SourceId') }},
    provider as {{ q('x_ProviderId') }},
    user_email as {{ q('x_UserEmail') }},
    environment as {{ q('x_Environment') }},
    original_currency as {{ q('x_OriginalCurrency') }},
    workspace as {{ q('x_Workspace') }},
    restated_at as {{ q('x_RestatedAt') }}
from named
