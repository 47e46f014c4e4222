{#-
    A model's schema is exactly its configured `schema` (`analytics` unless the
    user sets another), not dbt's default `<target schema>_<schema>`; a model
    without one lands in the target's schema.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema | trim }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
