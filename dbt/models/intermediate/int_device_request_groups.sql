{{ config(materialized="incremental", pre_hook="{{ delete_run_rows(in_run_request_days('partition_date')) }}") }}
-- depends_on: {{ ref('stg_requests') }}
-- depends_on: {{ ref('stg_request_energy_pieces') }}
-- the request groups each device served each day: one row per distinct (day, device, model, family, technique,
-- baseline model, device type) of the requests with a piece on the device that day. The daily rollups read their
-- devices from here (a few rows a device) instead of each joining every piece to its request.
with pieces as (
    select partition_date, device_id, request_id
    from {{ ref('int_request_cost_pieces') }}
    where {{ in_run_request_days('partition_date') }}
),

-- the requests of those pieces (they start at most 2 days before the piece's day)
piece_requests as (
    select request_id, model, family, technique, baseline_model, device_type
    from {{ ref('fct_request_cost') }}
    where {{ in_run_days('request_date', before=4) }}
)

select distinct
    pieces.partition_date,
    pieces.device_id,
    piece_requests.model,
    piece_requests.family,
    piece_requests.technique,
    piece_requests.baseline_model,
    piece_requests.device_type
from pieces
inner join piece_requests on pieces.request_id = piece_requests.request_id
