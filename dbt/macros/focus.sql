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

{#- FOCUS 1.2 ServiceSubcategory values, by their one parent ServiceCategory. -#}
{% macro focus_subcategories() -%}
    {{ return({
        'AI and Machine Learning': ['AI Platforms', 'Bots', 'Generative AI', 'Machine Learning',
                                    'Natural Language Processing'],
        'Analytics': ['Analytics Platforms', 'Business Intelligence', 'Data Processing', 'Search',
                      'Streaming Analytics'],
        'Business Applications': ['Productivity and Collaboration'],
        'Compute': ['Containers', 'End User Computing', 'Quantum Compute', 'Serverless Compute',
                    'Virtual Machines'],
        'Databases': ['Caching', 'Data Warehouses', 'Ledger Databases', 'NoSQL Databases',
                      'Relational Databases', 'Time Series Databases'],
        'Developer Tools': ['Developer Platforms', 'Continuous Integration and Deployment',
                            'Development Environments', 'Source Code Management',
                            'Quality Assurance'],
        'Identity': ['Identity and Access Management'],
        'Integration': ['API Management', 'Messaging', 'Workflow Orchestration'],
        'Internet of Things': ['IoT Analytics', 'IoT Platforms'],
        'Management and Governance': ['Architecture', 'Compliance', 'Cost Management',
                                      'Data Governance', 'Disaster Recovery',
                                      'Endpoint Management', 'Observability', 'Support'],
        'Media': ['Content Creation', 'Gaming', 'Media Streaming', 'Mixed Reality'],
        'Migration': ['Data Migration', 'Resource Migration'],
        'Mobile': [],
        'Multicloud': ['Multicloud Integration'],
        'Networking': ['Application Networking', 'Content Delivery', 'Network Connectivity',
                       'Network Infrastructure', 'Network Routing', 'Network Security'],
        'Security': ['Secret Management', 'Security Posture Management',
                     'Threat Detection and Response'],
        'Storage': ['Backup Storage', 'Block Storage', 'File Storage', 'Object Storage',
                    'Storage Platforms'],
        'Web': ['Application Platforms'],
        'Other': [],
    }) }}
{%- endmacro %}

{#- Every allowed (ServiceCategory, ServiceSubcategory) pair, `Other (<category>)` included. -#}
{% macro focus_category_pairs() -%}
    {%- set pairs = [] -%}
    {%- for category, subcategories in costsync.focus_subcategories().items() -%}
        {%- for subcategory in subcategories + ['Other (' ~ category ~ ')'] -%}
            {%- do pairs.append((category, subcategory)) -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return(pairs) }}
{%- endmacro %}

{#- FOCUS ServiceSubcategory by service name (lower case): StackSpend's, then LevelFour's. -#}
{% macro known_service_subcategories() -%}
    {{ return({
        'gpt-4o': 'Generative AI',
        'gpt-4o-mini': 'Generative AI',
        'o3-mini': 'Generative AI',
        'text-embedding-3-large': 'Generative AI',
        'dall-e-3': 'Generative AI',
        'claude-sonnet': 'Generative AI',
        'claude-opus': 'Generative AI',
        'claude-haiku': 'Generative AI',
        'azure-openai': 'Generative AI',
        'vertex-ai': 'AI Platforms',
        'athena': 'Analytics Platforms',
        'bigquery': 'Analytics Platforms',
        'ec2': 'Virtual Machines',
        'compute-engine': 'Virtual Machines',
        'virtual-machines': 'Virtual Machines',
        'lambda': 'Serverless Compute',
        'cloud-run': 'Serverless Compute',
        'rds': 'Relational Databases',
        'cloud-sql': 'Relational Databases',
        'sql-database': 'Relational Databases',
        'dynamodb': 'NoSQL Databases',
        'cloudfront': 'Content Delivery',
        'data-transfer': 'Network Connectivity',
        'bandwidth': 'Network Connectivity',
        's3': 'Object Storage',
        'cloud-storage': 'Object Storage',
        'blob-storage': 'Object Storage',
        'amazon ec2': 'Virtual Machines',
        'compute engine': 'Virtual Machines',
        'virtual machines': 'Virtual Machines',
        'aws lambda': 'Serverless Compute',
        'cloud run': 'Serverless Compute',
        'amazon eks': 'Containers',
        'azure kubernetes service': 'Containers',
        'amazon s3': 'Object Storage',
        'cloud storage': 'Object Storage',
        'storage': 'Storage Platforms',
        'amazon rds': 'Relational Databases',
        'cloud sql': 'Relational Databases',
        'azure sql database': 'Relational Databases',
        'amazon dynamodb': 'NoSQL Databases',
        'amazon cloudfront': 'Content Delivery',
        'aws data transfer': 'Network Connectivity',
        'vertex ai': 'AI Platforms',
        'azure openai service': 'Generative AI',
        'azure monitor': 'Observability',
    }) }}
{%- endmacro %}

{#- Providers whose every service falls in one subcategory, whatever its name. -#}
{% macro provider_service_subcategories() -%}
    {{ return({
        'openai': 'Generative AI',
        'anthropic': 'Generative AI',
        'k8s': 'Containers',
    }) }}
{%- endmacro %}

{#-
    FOCUS ServiceSubcategory of a service whose ServiceCategory is
    `category_expression`: the var `service_subcategories` first (taken as
    set), then the known names and the provider, each only where its parent is
    that category (a category changed by the var `service_categories` keeps
    its subcategories consistent), else `Other (<category>)`.
-#}
{% macro focus_service_subcategory(provider_expression, service_expression, category_expression) -%}
    {%- set name = 'lower(' ~ service_expression ~ ')' -%}
    {%- set parent = {} -%}
    {%- for category, subcategories in costsync.focus_subcategories().items() -%}
        {%- for subcategory in subcategories -%}
            {%- do parent.update({subcategory: category}) -%}
        {%- endfor -%}
    {%- endfor -%}
    case
        {%- for service, subcategory in var('service_subcategories', {}).items() %}
        when {{ name }} = {{ costsync.sql_string(service | lower) }}
            then {{ costsync.sql_string(subcategory) }}
        {%- endfor %}
        {%- for service, subcategory in costsync.known_service_subcategories().items() %}
        when {{ name }} = {{ costsync.sql_string(service) }}
            and {{ category_expression }} = {{ costsync.sql_string(parent[subcategory]) }}
            then {{ costsync.sql_string(subcategory) }}
        {%- endfor %}
        {%- for provider, subcategory in costsync.provider_service_subcategories().items() %}
        when lower({{ provider_expression }}) = {{ costsync.sql_string(provider) }}
            and {{ category_expression }} = {{ costsync.sql_string(parent[subcategory]) }}
            then {{ costsync.sql_string(subcategory) }}
        {%- endfor %}
        else 'Other (' || {{ category_expression }} || ')'
    end
{%- endmacro %}

{#-
    FOCUS ChargeClass: `Correction` for a charge costsync re-read because the
    API restated it after its billing period had ended, else NULL.
-#}
{% macro focus_charge_class(restated_at_expression, billing_period_end_expression) -%}
    cast(
        case
            when {{ restated_at_expression }} >= {{ billing_period_end_expression }}
                then 'Correction'
        end
        as {{ dbt.type_string() }}
    )
{%- endmacro %}
