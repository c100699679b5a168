-- Sample products for `make up`. Not a numbered migration: applied by `dozen-migrate --seed`,
-- and it never overwrites a level that is already there.
INSERT INTO inventory (sku, quantity) VALUES
    ('glazed', 100),
    ('chocolate', 80),
    ('strawberry', 60),
    ('boston-cream', 40),
    ('old-fashioned', 30)
ON CONFLICT (sku) DO NOTHING;
