{#- Mappings from the vendors' values to FOCUS values. -#}

{#- StackSpend's rollup categories. -#}
{% macro stackspend_categories() -%}
    {{ return({
        'ai_inference': 'AI and Machine Learning',
        'analytics': 'Analytics',
        'compute': 'Compute',
        'database': 'Databases',
        'networking': 'Networking',
        'storage': 'Storage',
    }) }}
{%- endmacro %}

{#- StackSpend's services, by the category its rollups put them in. -#}
{% macro stackspend_service_categories() -%}
    {{ return({
        'ai_inference': ['gpt-4o', 'gpt-4o-mini', 'o3-mini', 'text-embedding-3-large', 'dall-e-3',
                         'claude-sonnet', 'claude-opus', 'claude-haiku', 'vertex-ai',
                         'azure-openai'],
        'analytics': ['athena', 'bigquery'],
        'compute': ['ec2', 'lambda', 'compute-engine', 'cloud-run', 'virtual-machines'],
        'database': ['rds', 'dynamodb', 'cloud-sql', 'sql-database'],
        'networking': ['cloudfront', 'data-transfer', 'bandwidth'],
        'storage': ['s3', 'cloud-storage', 'blob-storage'],
    }) }}
{%- endmacro %}

{#- FOCUS ServiceCategory by service name (lower case): StackSpend's, then LevelFour's. -#}
{% macro known_service_categories() -%}
    {%- set known = {} -%}
    {%- set focus_of = costsync.stackspend_categories() -%}
    {%- for category, services in costsync.stackspend_service_categories().items() -%}
        {%- for service in services -%}
            {%- do known.update({service: focus_of[category]}) -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- do known.update(costsync.levelfour_service_categories()) -%}
    {{ return(known) }}
{%- endmacro %}

{#- LevelFour's cloud services, as its breakdown names them. -#}
{% macro levelfour_service_categories() -%}
    {{ return({
        'amazon ec2': 'Compute',
        'amazon s3': 'Storage',
        'amazon rds': 'Databases',
        'aws lambda': 'Compute',
        'amazon cloudfront': 'Networking',
        'amazon dynamodb': 'Databases',
        'aws data transfer': 'Networking',
        'amazon eks': 'Compute',
        'compute engine': 'Compute',
        'cloud storage': 'Storage',
        'cloud sql': 'Databases',
        'vertex ai': 'AI and Machine Learning',
        'cloud run': 'Compute',
        'networking': 'Networking',
        'virtual machines': 'Compute',
        'storage': 'Storage',
        'azure sql database': 'Databases',
        'azure openai service': 'AI and Machine Learning',
        'azure kubernetes service': 'Compute',
        'azure monitor': 'Management and Governance',
    }) }}
{%- endmacro %}

{#- For names not listed: the first keyword found in the lower-cased name decides. -#}
{% macro service_category_keywords() -%}
    {{ return([
        ('AI and Machine Learning', ['openai', 'vertex', 'sagemaker', 'bedrock', 'gpt', 'claude',
                                     'gemini', 'embedding', 'cognitive', 'machine learning']),
        ('Databases', ['sql', 'database', 'dynamodb', 'cosmos', 'spanner', 'bigtable',
                       'firestore', 'redis', 'elasticache', 'aurora', 'documentdb']),
        ('Analytics', ['bigquery', 'athena', 'redshift', 'glue', 'dataflow', 'dataproc',
                       'synapse', 'kinesis', 'databricks', 'looker']),
        ('Management and Governance', ['monitor', 'cloudwatch', 'logging', 'cloudtrail']),
        ('Security', ['security', 'key vault', 'secret', 'firewall', 'guardduty']),
        ('Networking', ['transfer', 'bandwidth', 'cloudfront', 'cdn', 'network', 'vpc',
                        'load balanc', 'dns', 'egress', 'gateway', 'ingress']),
        ('Storage', ['storage', 'blob', 'glacier', 'backup', 'disk', 'bucket']),
        ('Compute', ['compute', 'lambda', 'virtual machine', 'cloud run', 'function',
                     'kubernetes', 'container', 'fargate', 'app service', 'instance']),
    ]) }}
{%- endmacro %}

{#- Providers whose every service falls in one category, whatever its name. -#}
{% macro provider_service_categories() -%}
    {{ return({
        'openai': 'AI and Machine Learning',
        'anthropic': 'AI and Machine Learning',
        'k8s': 'Compute',
    }) }}
{%- endmacro %}

{#- StackSpend rollup category -> FOCUS ServiceCategory ('Other' when unknown, NULL stays NULL). -#}
{% macro stackspend_category_to_focus(category_expression) -%}
    case
        when {{ category_expression }} is null then null
        {%- for category, focus in costsync.stackspend_categories().items() %}
        when lower({{ category_expression }}) = {{ costsync.sql_string(category) }}
            then {{ costsync.sql_string(focus) }}
        {%- endfor %}
        else 'Other'
    end
{%- endmacro %}

{#-
    FOCUS ServiceCategory of a service: the var `service_categories` first, then
    the known names, then the provider (AI vendors, Kubernetes namespaces), then
    keywords in the name, else 'Other'.
-#}
{% macro focus_service_category(provider_expression, service_expression) -%}
    {%- set name = 'lower(' ~ service_expression ~ ')' -%}
    {%- set exact = costsync.known_service_categories() -%}
    {%- do exact.update(var('service_categories', {})) -%}
    case
        {%- for service, focus in exact.items() %}
        when {{ name }} = {{ costsync.sql_string(service | lower) }} then {{ costsync.sql_string(focus) }}
        {%- endfor %}
        {%- for provider, focus in costsync.provider_service_categories().items() %}
        when lower({{ provider_expression }}) = {{ costsync.sql_string(provider) }}
            then {{ costsync.sql_string(focus) }}
        {%- endfor %}
        {%- for focus, keywords in costsync.service_category_keywords() %}
        when {% for keyword in keywords -%}
            {{ name }} like {{ costsync.sql_string('%' ~ keyword ~ '%') }}
            {%- if not loop.last %} or {% endif -%}
        {%- endfor %} then {{ costsync.sql_string(focus) }}
        {%- endfor %}
        else 'Other'
    end
{%- endmacro %}

{#- FOCUS ProviderName of a provider slug; an unknown slug is kept as sent. -#}
{% macro focus_provider_name(provider_expression) -%}
    {%- set names = {
        'aws': 'AWS',
        'gcp': 'Google Cloud',
        'azure': 'Microsoft Azure',
        'openai': 'OpenAI',
        'anthropic': 'Anthropic',
        'k8s': 'Kubernetes',
    } -%}
    {%- do names.update(var('provider_names', {})) -%}
    case lower({{ provider_expression }})
        {%- for provider, name in names.items() %}
        when {{ costsync.sql_string(provider | lower) }} then {{ costsync.sql_string(name) }}
        {%- endfor %}
        else {{ provider_expression }}
    end
{%- endmacro %}

{#- FOCUS ChargeCategory: a negative amount is a credit. -#}
{% macro focus_charge_category(amount_expression) -%}
    case when {{ amount_expression }} < 0 then 'Credit' else 'Usage' end
{%- endmacro %}
