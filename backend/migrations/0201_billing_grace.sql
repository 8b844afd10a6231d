-- Grace period for failed renewals: when a paid Pro subscription turns past_due (Stripe is
-- still retrying the card), cloud processing continues for NOJOIN_BILLING_PAST_DUE_GRACE_DAYS
-- counted from this moment (the Stripe event's `created`). Set on entering Stripe's
-- `past_due`, kept while it stays so, cleared on active/trialing/canceled. Only the backend
-- writes it: the table's grants and RLS policies from 0200_billing.sql are unchanged.
ALTER TABLE public.subscriptions ADD COLUMN past_due_since timestamptz;
