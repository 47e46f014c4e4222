with anomalies as (
    {{ costsync.union_workspaces(
        'stackspend', 'anomalies',
        ['id', 'provider_type', 'service', 'detected_date', 'actual_cost', 'expected_cost',
         'deviation_percent', 'severity', 'alert_type', 'status'],
    ) }}
)

select
    cast(id as {{ dbt.type_string() }}) as anomaly_id,
    cast(provider_type as {{ dbt.type_string() }}) as provider,
    cast(service as {{ dbt.type_string() }}) as service,
    detected_date as detected_at,
    {{ costsync.utc_date('detected_date') }} as detected_date,
    {{ costsync.money('actual_cost') }} as actual_cost_usd,
    {{ costsync.money('expected_cost') }} as expected_cost_usd,
    deviation_percent,
    cast(severity as {{ dbt.type_string() }}) as severity,
    cast(alert_type as {{ dbt.type_string() }}) as alert_type,
    cast(status as {{ dbt.type_string() }}) as status,
    workspace,
    dataset
from anomalies
