{#
  Rows repeating a combination of columns (NULLs compare equal, as in a group by): found by the combination's
  64-bit hash first (a hash equal to the one before it in hash order), then confirmed on the values of the rows
  whose hash repeats (see test_unique.sql; on a 1,000-accelerator day's 15.9M energy pieces, 1.2 s against 1.6 to
  2.4 s for grouping the hashes).
#}
{% test unique_combination(model, columns) %}
with combination_hashes as (
    select hash({{ columns | join(', ') }}) as combination_hash
    from {{ model }}
),

repeated_hashes as (
    select combination_hash
    from (
        select combination_hash, lag(combination_hash) over (order by combination_hash) as previous_hash
        from combination_hashes
    )
    where combination_hash = previous_hash
)

select {{ columns | join(', ') }}, count(*) as n
from {{ model }}
where hash({{ columns | join(', ') }}) in (select combination_hash from repeated_hashes)
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
