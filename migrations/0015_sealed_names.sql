-- Businesses' and companies' names are personal (a business is often a person's name):
-- since TenantRegistered 4.0, CompanyCreated 2.0 and CompanyRenamed 2.0 they are sealed
-- with the business's data key, and the read models keep them sealed; the API opens them.
-- Rows written from older events hold clear text: mark it as a legacy value
-- (`x8v0.<base64url>`), exactly as the upcasters do when the projections are rebuilt.

-- The legacy sealed form of a clear value: 'x8v0.' || base64url without padding.
create function x8_legacy_sealed(plaintext text) returns text
    language sql immutable strict
as
$$
select 'x8v0.' || rtrim(translate(replace(encode(convert_to(plaintext, 'UTF8'), 'base64'),
                                          E'\n', ''), '+/', '-_'), '=')
$$;

alter table tenants rename column name to name_sealed;
update tenants set name_sealed = x8_legacy_sealed(name_sealed) where name_sealed not like 'x8v_.%';

alter table companies rename column name to name_sealed;
update companies set name_sealed = x8_legacy_sealed(name_sealed) where name_sealed not like 'x8v_.%';
