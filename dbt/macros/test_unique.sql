{#
  dbt's unique test on DuckDB, the same failing rows at about half the cost on millions of ids: the repeated
  values are found by their 64-bit hash first (a group by on integers rather than on the text), then confirmed by
  grouping only the rows whose hash repeats on the values themselves, so a hash collision is never reported.
#}
{% macro duckdb__test_unique(model, column_name) %}
with repeated_hashes as (
    select hash({{ column_name }}) as value_hash
    from {{ model }}
    where {{ column_name }} is not null
    group by 1
    having count(*) > 1
)

select
    {{ column_name }} as unique_field,
    count(*) as n_records
from {{ model }}
where {{ column_name }} is not null
    and hash({{ column_name }}) in (select value_hash from repeated_hashes)
group by {{ column_name }}
having count(*) > 1
{% endmacro %}
