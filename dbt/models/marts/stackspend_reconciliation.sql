{#-
    StackSpend's line items against its own rollups, per workspace: per day
    and provider (provider rollups), and per day (service and category rollup
    totals: the docs do not say which other columns a service row carries).
    Every difference is zero when costsync loaded the same days of all three.
-#}

with line_items as (
    select
        workspace,
        usage_date,
        provider,
        count(*) as line_item_count,
        sum(net_amount_usd) as line_items_cost_usd
    from {{ ref('stg_stackspend__line_items') }}
    group by workspace, usage_date, provider
),

rollups as (
    select workspace, usage_date, group_by, provider, cost_usd
    from {{ ref('stg_stackspend__daily_rollups') }}
),

provider_rollups as (
    select workspace, usage_date, provider, sum(cost_usd) as provider_rollup_cost_usd
    from rollups
    where group_by = 'provider'
    group by workspace, usage_date, provider
),

service_rollups as (
    select workspace, usage_date, sum(cost_usd) as service_rollup_cost_usd
    from rollups
    where group_by = 'service'
    group by workspace, usage_date
),

category_rollups as (
    select workspace, usage_date, sum(cost_usd) as category_rollup_cost_usd
    from rollups
    where group_by = 'category'
    group by workspace, usage_date
),

day_line_items as (
    select workspace, usage_date, sum(line_items_cost_usd) as day_line_items_cost_usd
    from line_items
    group by workspace, usage_date
),

provider_days as (
    select workspace, usage_date, provider from line_items
    union distinct
    select workspace, usage_date, provider from provider_rollups
),

rollup_days as (
    select workspace, usage_date from category_rollups
    union distinct
    select workspace, usage_date from service_rollups
),

{#- A day with service or category rollups only still gets a row, its provider NULL. -#}
keys as (
    select workspace, usage_date, provider from provider_days
    union all
    select workspace, usage_date, cast(null as {{ dbt.type_string() }}) as provider
    from rollup_days
    where not exists (
        select 1 from provider_days
        where provider_days.workspace is not distinct from rollup_days.workspace
          and provider_days.usage_date = rollup_days.usage_date
    )
)

select
    keys.workspace,
    keys.usage_date,
    keys.provider,
    coalesce(line_items.line_item_count, 0) as line_item_count,
    coalesce(line_items.line_items_cost_usd, 0) as line_items_cost_usd,
    provider_rollups.provider_rollup_cost_usd,
    coalesce(line_items.line_items_cost_usd, 0)
        - coalesce(provider_rollups.provider_rollup_cost_usd, 0) as provider_diff,
    coalesce(day_line_items.day_line_items_cost_usd, 0) as day_line_items_cost_usd,
    service_rollups.service_rollup_cost_usd as day_service_rollup_cost_usd,
    coalesce(day_line_items.day_line_items_cost_usd, 0)
        - coalesce(service_rollups.service_rollup_cost_usd, 0) as service_diff,
    category_rollups.category_rollup_cost_usd as day_category_rollup_cost_usd,
    coalesce(day_line_items.day_line_items_cost_usd, 0)
        - coalesce(category_rollups.category_rollup_cost_usd, 0) as category_diff
from keys
left join line_items
    on line_items.workspace is not distinct from keys.workspace
    and line_items.usage_date = keys.usage_date
    and line_items.provider is not distinct from keys.provider
left join provider_rollups
    on provider_rollups.workspace is not distinct from keys.workspace
    and provider_rollups.usage_date = keys.usage_date
    and provider_rollups.provider is not distinct from keys.provider
left join service_rollups
    on service_rollups.workspace is not distinct from keys.workspace
    and service_rollups.usage_date = keys.usage_date
left join day_line_items
    on day_line_items.workspace is not distinct from keys.workspace
    and day_line_items.usage_date = keys.usage_date
left join category_rollups
    on category_rollups.workspace is not distinct from keys.workspace
    and category_rollups.usage_date = keys.usage_date
