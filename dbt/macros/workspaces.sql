{#-
    Workspaces: a StackSpend workspace NAME is loaded into dataset
    `stackspend_NAME`, a LevelFour one into `levelfour_NAME`. The dbt vars
    `stackspend_workspaces` and `levelfour_workspaces` list them; unset or
    empty, the models read the single dataset `stackspend_schema` /
    `levelfour_schema`.
-#}

{#- The workspace names the var `<vendor>_workspaces` lists, checked; [] when unset. -#}
{% macro workspaces(vendor) -%}
    {%- set var_name = vendor ~ '_workspaces' -%}
    {%- set names = var(var_name, []) or [] -%}
    {%- if names is string or names is mapping -%}
        {{ exceptions.raise_compiler_error(
            "var " ~ var_name ~ " must be a list of workspace names, e.g. --vars '{"
            ~ var_name ~ ": [acme, globex]}'"
        ) }}
    {%- endif -%}
    {%- set seen = [] -%}
    {%- for name in names -%}
        {%- if not modules.re.match('^[a-z][a-z0-9_]*$', name | string) -%}
            {{ exceptions.raise_compiler_error(
                "var " ~ var_name ~ ": workspace name '" ~ name ~ "' must match"
                ~ " [a-z][a-z0-9_]* (lower-case letters, digits, _), as in costsync's config"
            ) }}
        {%- endif -%}
        {%- if name in seen -%}
            {{ exceptions.raise_compiler_error(
                "var " ~ var_name ~ " lists workspace '" ~ name ~ "' twice; list each once"
            ) }}
        {%- endif -%}
        {%- do seen.append(name | string) -%}
    {%- endfor -%}
    {{ return(seen) }}
{%- endmacro %}

{#-
    Where a vendor's table lives: one entry per workspace (its name, its
    dataset, the relation), or a single one for the dataset `<vendor>_schema`
    (workspace none) when no workspaces are listed.
-#}
{% macro workspace_relations(vendor, table) -%}
    {%- set default = source(vendor, table) -%}
    {%- set found = [] -%}
    {%- for name in costsync.workspaces(vendor) -%}
        {%- set dataset = vendor ~ '_' ~ name -%}
        {%- do found.append({
            'workspace': name,
            'dataset': dataset,
            'relation': api.Relation.create(
                database=default.database, schema=dataset, identifier=default.identifier
            ),
        }) -%}
    {%- endfor -%}
    {%- if not found -%}
        {%- do found.append({'workspace': none, 'dataset': default.schema, 'relation': default}) -%}
    {%- endif -%}
    {{ return(found) }}
{%- endmacro %}

{#-
    The rows of a vendor's table from every workspace's dataset (UNION ALL),
    with two more columns: `workspace` (NULL without workspaces) and `dataset`.

    Args:
        columns: the columns every copy of the table has.
        optional: {column: SQL type} for columns a table loaded by an older
            costsync may lack; NULL there.
-#}
{% macro union_workspaces(vendor, table, columns, optional={}) -%}
    {%- for part in costsync.workspace_relations(vendor, table) %}
    {%- set present = costsync.column_names(part.relation, vendor, part.workspace) %}
    select
        {%- for column in columns %}
        {{ adapter.quote(column) }},
        {%- endfor %}
        {%- for column, type in optional.items() %}
        {%- if not execute or column in present %}
        {{ adapter.quote(column) }},
        {%- else %}
        cast(null as {{ type }}) as {{ adapter.quote(column) }},
        {%- endif %}
        {%- endfor %}
        {%- if part.workspace is none %}
        cast(null as {{ dbt.type_string() }}) as workspace,
        {%- else %}
        cast({{ costsync.sql_string(part.workspace) }} as {{ dbt.type_string() }}) as workspace,
        {%- endif %}
        cast({{ costsync.sql_string(part.dataset) }} as {{ dbt.type_string() }}) as dataset
    from {{ part.relation }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
{%- endmacro %}

{#- The lower-case column names of a loaded table; a missing table stops the build, naming the fix. -#}
{% macro column_names(relation, vendor, workspace) -%}
    {%- if not execute -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set found = adapter.get_relation(
        database=relation.database, schema=relation.schema, identifier=relation.identifier
    ) -%}
    {%- if found is none -%}
        {%- if workspace is none -%}
            {%- set fix = "run `costsync sync " ~ vendor ~ "` first, or set the var "
                ~ vendor ~ "_schema to the dataset it loaded" -%}
        {%- else -%}
            {%- set fix = "run `costsync sync " ~ vendor ~ " --workspace " ~ workspace ~ "` first" -%}
        {%- endif -%}
        {{ exceptions.raise_compiler_error(
            "no table " ~ relation.schema ~ "." ~ relation.identifier ~ " to build on; " ~ fix
        ) }}
    {%- endif -%}
    {%- set names = [] -%}
    {%- for column in adapter.get_columns_in_relation(found) -%}
        {%- do names.append(column.name | lower) -%}
    {%- endfor -%}
    {{ return(names) }}
{%- endmacro %}
