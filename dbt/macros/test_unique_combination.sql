{#
  Rows repeating a combination of columns (NULLs compare equal, as in a group by): found by the combination's
  64-bit hash first, then confirmed on the values of the rows whose hash repeats (see test_unique.sql).
#}
{% test unique_combination(model, columns) %}
with repeated_hashes as (
    select hash({{ columns | join(', ') }}) as combination_hash
    from {{ model }}
    group by 1
    having count(*) > 1
)

select {{ columns | join(', ') }}, count(*) as n
from {{ model }}
where hash({{ columns | join(', ') }}) in (select combination_hash from repeated_hashes)
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
