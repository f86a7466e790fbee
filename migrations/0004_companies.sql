-- Read model of companies, built by the `companies` projection.
create table companies
(
    company_id    uuid primary key,
    tenant_id     uuid        not null,
    code          text        not null,
    position      integer     not null,
    name          text        not null,
    company_type  text        not null,
    status        text        not null,
    created_at    timestamptz not null,
    last_position bigint      not null,
    constraint companies_tenant_code_key unique (tenant_id, code)
);
