select
    id as order_id,
    customer_id,
    cast(order_date as date) as order_date,
    {{ cents_to_dollars('amount_cents') }} as amount,
    status
from {{ ref('raw_orders') }}
