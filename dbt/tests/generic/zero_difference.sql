{#-
    A reconciliation difference is zero on every row: fails (or warns, with the
    var reconciliation_severity: warn) where |difference| exceeds the var
    reconciliation_tolerance_usd (0: exact).
-#}
{% test zero_difference(model, column_name) %}
    {{ config(severity=var('reconciliation_severity', 'error')) }}
    select *
    from {{ model }}
    where {{ column_name }} is null
       or abs({{ column_name }}) > {{ var('reconciliation_tolerance_usd', 0) }}
{% endtest %}
