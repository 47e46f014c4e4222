{#- SQL that differs between warehouses, or that is easy to get subtly wrong. -#}

{#- Money stays DECIMAL(38,18) (NUMERIC(38,18) on Postgres), never a float. -#}
{% macro money(expression) -%}
    {{ return(adapter.dispatch('money', 'costsync')(expression)) }}
{%- endmacro %}

{% macro default__money(expression) -%}
    {{ costsync.decimal(expression) }}
{%- endmacro %}

{#-
    On BigQuery costsync loads money as BIGNUMERIC(38,18) already (NUMERIC would keep
    9 decimals), and every money expression of the models is such a column or a sum
    of them, so it is left as it is.
-#}
{% macro bigquery__money(expression) -%}
    {{ expression }}
{%- endmacro %}

{#- A DECIMAL(38,18) value; BIGNUMERIC on BigQuery, whose DECIMAL (NUMERIC) keeps 9 decimals. -#}
{% macro decimal(expression) -%}
    {{ return(adapter.dispatch('decimal', 'costsync')(expression)) }}
{%- endmacro %}

{% macro default__decimal(expression) -%}
    cast({{ expression }} as decimal(38, 18))
{%- endmacro %}

{% macro bigquery__decimal(expression) -%}
    cast({{ expression }} as bignumeric)
{%- endmacro %}

{#- The SQL type TIMESTAMP WITH TIME ZONE (an instant); BigQuery calls it TIMESTAMP. -#}
{% macro type_timestamp_tz() -%}
    {{ return(adapter.dispatch('type_timestamp_tz', 'costsync')()) }}
{%- endmacro %}

{% macro default__type_timestamp_tz() -%}
    {{ return('timestamp with time zone') }}
{%- endmacro %}

{% macro bigquery__type_timestamp_tz() -%}
    {{ return('timestamp') }}
{%- endmacro %}

{#- The instant a UTC calendar day starts, as TIMESTAMP WITH TIME ZONE. -#}
{% macro utc_midnight(date_expression) -%}
    {{ return(adapter.dispatch('utc_midnight', 'costsync')(date_expression)) }}
{%- endmacro %}

{% macro default__utc_midnight(date_expression) -%}
    (cast({{ date_expression }} as timestamp) at time zone 'UTC')
{%- endmacro %}

{#- BigQuery's TIMESTAMP is an instant; TIMESTAMP(date, 'UTC') is that day's UTC midnight. -#}
{% macro bigquery__utc_midnight(date_expression) -%}
    timestamp({{ date_expression }}, 'UTC')
{%- endmacro %}

{#- The UTC calendar day of a TIMESTAMP WITH TIME ZONE, whatever the session's zone. -#}
{% macro utc_date(timestamp_expression) -%}
    {{ return(adapter.dispatch('utc_date', 'costsync')(timestamp_expression)) }}
{%- endmacro %}

{% macro default__utc_date(timestamp_expression) -%}
    cast(({{ timestamp_expression }} at time zone 'UTC') as date)
{%- endmacro %}

{% macro bigquery__utc_date(timestamp_expression) -%}
    date({{ timestamp_expression }}, 'UTC')
{%- endmacro %}

{% macro add_days(date_expression, days) -%}
    cast({{ dbt.dateadd('day', days, date_expression) }} as date)
{%- endmacro %}

{% macro add_months(date_expression, months) -%}
    cast({{ dbt.dateadd('month', months, date_expression) }} as date)
{%- endmacro %}

{#- The first day of the month of a DATE, as a DATE (no time zone involved). -#}
{% macro month_start(date_expression) -%}
    cast({{ dbt.date_trunc('month', 'cast(' ~ date_expression ~ ' as timestamp)') }} as date)
{%- endmacro %}

{#- A LevelFour period, 'YYYY-MM'. -#}
{% macro period_pattern() -%}
    ^[0-9]{4}-(0[1-9]|1[0-2])$
{%- endmacro %}

{#- The first day of a 'YYYY-MM' period as a DATE; NULL for a malformed period. -#}
{% macro period_start(period_expression) -%}
    case
        when {{ costsync.matches_regex(period_expression, costsync.period_pattern()) }}
            then cast({{ period_expression }} || '-01' as date)
    end
{%- endmacro %}

{#- A key made of columns that may be NULL: NULL and '' stay distinct, no separator collides. -#}
{% macro surrogate_key(columns) -%}
    {%- set parts = [] -%}
    {%- for column in columns -%}
        {%- set text = 'cast(' ~ adapter.quote(column) ~ ' as ' ~ dbt.type_string() ~ ')' -%}
        {%- do parts.append(
            "coalesce(cast(length(" ~ text ~ ") as " ~ dbt.type_string() ~ ") || ':' || "
            ~ text ~ ", '~')"
        ) -%}
    {%- endfor -%}
    {{ dbt.hash(parts | join(" || '|' || ")) }}
{%- endmacro %}

{#- Whether a text expression matches a regular expression (the pattern is anchored by the caller). -#}
{% macro matches_regex(expression, pattern) -%}
    {{ return(adapter.dispatch('matches_regex', 'costsync')(expression, pattern)) }}
{%- endmacro %}

{% macro duckdb__matches_regex(expression, pattern) -%}
    regexp_matches({{ expression }}, '{{ pattern }}')
{%- endmacro %}

{% macro postgres__matches_regex(expression, pattern) -%}
    ({{ expression }} ~ '{{ pattern }}')
{%- endmacro %}

{% macro bigquery__matches_regex(expression, pattern) -%}
    regexp_contains({{ expression }}, r'{{ pattern }}')
{%- endmacro %}

{% macro default__matches_regex(expression, pattern) -%}
    {{ costsync.unsupported_adapter('matches_regex') }}
{%- endmacro %}

{#-
    FOCUS Tags: a JSON object {tag_key: tag_value}, or {} where there is no tag.
    With no arguments, the empty object.
-#}
{% macro tags_json(key_expression=none, value_expression=none) -%}
    {{ return(adapter.dispatch('tags_json', 'costsync')(key_expression, value_expression)) }}
{%- endmacro %}

{% macro duckdb__tags_json(key_expression, value_expression) -%}
    {%- if key_expression is none -%}
        cast('{}' as json)
    {%- else -%}
        case
            when {{ key_expression }} is null then cast('{}' as json)
            else json_object({{ key_expression }}, {{ value_expression }})
        end
    {%- endif -%}
{%- endmacro %}

{% macro postgres__tags_json(key_expression, value_expression) -%}
    {%- if key_expression is none -%}
        cast('{}' as jsonb)
    {%- else -%}
        case
            when {{ key_expression }} is null then cast('{}' as jsonb)
            else jsonb_build_object({{ key_expression }}, {{ value_expression }})
        end
    {%- endif -%}
{%- endmacro %}

{% macro bigquery__tags_json(key_expression, value_expression) -%}
    {%- if key_expression is none -%}
        json '{}'
    {%- else -%}
        case
            when {{ key_expression }} is null then json '{}'
            else json_object({{ key_expression }}, {{ value_expression }})
        end
    {%- endif -%}
{%- endmacro %}

{% macro default__tags_json(key_expression, value_expression) -%}
    {{ costsync.unsupported_adapter('tags_json') }}
{%- endmacro %}

{% macro unsupported_adapter(name) -%}
    {{ exceptions.raise_compiler_error(
        "costsync's dbt models run on DuckDB, Postgres and BigQuery; for " ~ target.type
        ~ " add a macro " ~ target.type ~ "__" ~ name ~ " to your project"
        ~ " (see dbt's adapter.dispatch)."
    ) }}
{%- endmacro %}

{#- A Jinja string as a SQL string literal. -#}
{% macro sql_string(text) -%}
    '{{ text | string | replace("'", "''") }}'
{%- endmacro %}
