-- Orders' customer reference and description are personal: since OrderCreated 2.0 they are
-- sealed with the business's data key (see domain/src/billing/order.rs) and the read model
-- keeps them sealed; the API opens them. Rows written from 1.0 events hold clear text:
-- mark it as a legacy value (`x8v0.<base64url>`), exactly as the upcaster does when the
-- projection is rebuilt.
alter table orders rename column customer_ref to customer_ref_sealed;
alter table orders rename column description to description_sealed;

update orders
set customer_ref_sealed = 'x8v0.' || rtrim(translate(replace(encode(convert_to(customer_ref_sealed, 'UTF8'), 'base64'), E'\n', ''), '+/', '-_'), '='),
    description_sealed  = 'x8v0.' || rtrim(translate(replace(encode(convert_to(description_sealed, 'UTF8'), 'base64'), E'\n', ''), '+/', '-_'), '=')
where customer_ref_sealed not like 'x8v_.%';

-- Loyalty accounts' customer reference, sealed since LoyaltyAccountOpened 2.0 (see
-- domain/src/loyalty/account.rs): the same treatment.
alter table loyalty_accounts rename column customer_ref to customer_ref_sealed;

update loyalty_accounts
set customer_ref_sealed = 'x8v0.' || rtrim(translate(replace(encode(convert_to(customer_ref_sealed, 'UTF8'), 'base64'), E'\n', ''), '+/', '-_'), '=')
where customer_ref_sealed not like 'x8v_.%';
