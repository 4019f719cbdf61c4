-- 0007: the claim counts the other requests of the same payment and amount
-- (request_store_same_amount: Toss cancels are told apart by amount). Without
-- an index that count read every row of cancel_request, once per attempt:
-- the claim got slower with every request ever recorded.
CREATE INDEX cancel_request_payment_idx ON cancel_request (payment_key, gateway, amount);
