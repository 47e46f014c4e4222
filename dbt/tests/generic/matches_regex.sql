{#- Every non-NULL value matches `pattern` (a regular expression; anchor it with ^...$). -#}
{% test matches_regex(model, column_name, pattern) %}
    select {{ column_name }}
    from {{ model }}
    where {{ column_name }} is not null
      and not {{ costsync.matches_regex(column_name, pattern) }}
{% endtest %}
