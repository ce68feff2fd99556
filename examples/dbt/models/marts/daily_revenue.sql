select
    order_date,
    sum({{ cents_to_dollars('amount_cents') }}) as revenue
from {{ ref('raw_orders') }}
where status = 'completed'
group by order_date
