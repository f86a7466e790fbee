-- Conversations (issue 6): the read models of conversations and their messages, and the
-- buffering window of each connection. Personal fields stay sealed here, as in the log:
-- the API opens them with the tenant's data key when it answers.

alter table channels add column batch_window_secs integer not null default 10;

create table conversations (
    conversation_id      uuid primary key,
    tenant_id            uuid not null,
    company_id           uuid not null,
    channel_id           uuid not null,
    platform             text not null,
    lead_source          text not null,
    lead_detail          text,
    -- 'open' or 'resolved'
    status               text not null default 'open',
    contact_name_sealed  text,
    opened_at            timestamptz not null,
    last_inbound_at      timestamptz,
    last_outbound_at     timestamptz,
    -- the first inbound message no reply has answered yet (null: nothing waiting)
    first_unanswered_at  timestamptz,
    messages_in          integer not null default 0,
    messages_out         integer not null default 0,
    replies_timed        integer not null default 0,
    response_secs_total  bigint not null default 0,
    cost_micro_eur       bigint not null default 0,
    last_position        bigint not null
);
create index conversations_by_company on conversations (company_id, opened_at desc);
create index conversations_unanswered on conversations (company_id, first_unanswered_at)
    where first_unanswered_at is not null;

create table conversation_messages (
    conversation_id      uuid not null references conversations on delete cascade,
    -- 'in' (key: the provider's message id) or 'out' (key: our message id)
    direction            text not null,
    message_key          text not null,
    tenant_id            uuid not null,
    text_sealed          text not null,
    -- inbound: text | media | callback; outbound: TYPE1 | TYPE2 | TYPE3
    kind                 text not null,
    at                   timestamptz not null,
    batch                integer,
    -- outbound: sending | accepted | failed, then the receipt: sent | delivered | read | failed
    status               text,
    provider_message_id  text,
    failure_reason       text,
    rich_media           boolean,
    pricing_window       text,
    cost_micro_eur       bigint,
    response_time_secs   bigint,
    position             bigint not null,
    last_position        bigint not null,
    primary key (conversation_id, direction, message_key)
);
create index conversation_messages_in_order on conversation_messages (conversation_id, at, position);
