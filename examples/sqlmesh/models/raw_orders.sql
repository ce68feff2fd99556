MODEL (
  name dagctl_example.raw_orders,
  kind SEED (
    path '../seeds/raw_orders.csv'
  ),
  columns (
    order_id INTEGER,
    customer_id INTEGER,
    order_date DATE,
    amount DECIMAL(10, 2)
  ),
  grain order_id
);
