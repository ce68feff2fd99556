select
    o.customer_id,
    count(*) as orders,
    sum(o.amount) as revenue
from {{ ref('stg_orders') }} as o
join {{ ref('stg_customers') }} as c on c.customer_id = o.customer_id
where o.status = 'completed'
group by o.customer_id
