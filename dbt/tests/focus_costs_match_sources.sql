{#- focus_costs holds every source row with its amount: per vendor, the count and the exact sum agree. -#}
{%- set q = adapter.quote -%}

with focus as (
    select
        {{ q('x_Source') }} as source,
        count(*) as charges,
        sum({{ q('BilledCost') }}) as billed_cost,
        sum({{ q('EffectiveCost') }}) as effective_cost
    from {{ ref('focus_costs') }}
    group by {{ q('x_Source') }}
),

sources as (
    select 'stackspend' as source, count(*) as charges, sum(net_amount_usd) as cost
    from {{ ref('stg_stackspend__line_items') }}
    union all
    select 'levelfour' as source, count(*) as charges, sum(cost) as cost
    from {{ ref('stg_levelfour__spending_breakdown') }}
)

select sources.source, sources.charges, focus.charges as focus_charges,
       sources.cost, focus.billed_cost, focus.effective_cost
from sources
left join focus on focus.source = sources.source
where coalesce(focus.charges, 0) <> sources.charges
   or focus.billed_cost is distinct from sources.cost
   or focus.effective_cost is distinct from sources.cost
