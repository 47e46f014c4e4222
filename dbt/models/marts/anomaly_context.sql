{#-
    Each StackSpend anomaly beside the line-item spend of its provider and
    service that day, in the same workspace.
-#}

with anomalies as (
    select * from {{ ref('stg_stackspend__anomalies') }}
),

line_items as (
    select * from {{ ref('stg_stackspend__line_items') }}
),

service_days as (
    select
        workspace,
        usage_date,
        provider,
        service,
        count(*) as line_item_count,
        sum(net_amount_usd) as cost_usd
    from line_items
    group by workspace, usage_date, provider, service
),

provider_days as (
    select workspace, usage_date, provider, sum(net_amount_usd) as cost_usd
    from line_items
    group by workspace, usage_date, provider
)

select
    anomalies.workspace,
    anomalies.anomaly_id,
    anomalies.detected_at,
    anomalies.detected_date,
    anomalies.provider,
    anomalies.service,
    anomalies.severity,
    anomalies.alert_type,
    anomalies.status,
    anomalies.actual_cost_usd,
    anomalies.expected_cost_usd,
    anomalies.actual_cost_usd - anomalies.expected_cost_usd as excess_cost_usd,
    anomalies.deviation_percent,
    coalesce(service_days.line_item_count, 0) as service_day_line_item_count,
    service_days.cost_usd as service_day_cost_usd,
    provider_days.cost_usd as provider_day_cost_usd
from anomalies
left join service_days
    on service_days.workspace is not distinct from anomalies.workspace
    and service_days.usage_date = anomalies.detected_date
    and service_days.provider = anomalies.provider
    and service_days.service = anomalies.service
left join provider_days
    on provider_days.workspace is not distinct from anomalies.workspace
    and provider_days.usage_date = anomalies.detected_date
    and provider_days.provider = anomalies.provider
