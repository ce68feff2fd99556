MODEL (
  name dagctl_example.orders,
  kind INCREMENTAL_BY_TIME_RANGE (
    time_column order_date,
    batch_size 7
  ),
  start '2024-01-01',
  cron '@daily',
  grain order_id,
  audits (
    assert_positive_amount,
    not_null(columns := (order_id, customer_id))
  )
);

SELECT
  order_id,
  customer_id,
  order_date,
  amount
FROM dagctl_example.raw_orders
WHERE
  order_date BETWEEN @start_ds AND @end_ds
