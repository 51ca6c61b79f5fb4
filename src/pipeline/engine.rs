//! One worker's analysis: the flow table feeding protocol sessions, and redacted events out.

use crate::alert::{
    AnomalyAlert, AnomalyInfo, AnomalyKind, Credential, CredentialAlert, Event, FlowMeta, SessionObservation,
    SCHEMA_VERSION,
};
use crate::capture::Timestamp;
use crate::decode::TcpPacket;
use crate::flow::{FlowEvent, FlowHandler, FlowInfo, FlowLimits, FlowStats, FlowTable, Inspect, Side};
use crate::proto::{Ctx, ProtoConfig, ProtoEvent, ProtoStats, ServerLines, Session};

/// The flow table's view of the protocol layer.
struct Inspector {
    config: ProtoConfig,
    stats: ProtoStats,
    scratch: Vec<ProtoEvent>,
    events: Vec<Event>,
    server_lines: ServerLines,
}

impl FlowHandler for Inspector {
    /// Created at the first byte delivered in order.
    type App = Option<Session>;

    fn open(&mut self, _info: &FlowInfo) -> Self::App {
        None
    }

    fn event(&mut self, info: &FlowInfo, app: &mut Self::App, event: FlowEvent<'_>, ts: Timestamp) -> Inspect {
        if let FlowEvent::OverlapDifferentData(side) = event {
            self.report_overlap(info, app.as_ref(), side, ts);
            return Inspect::Continue;
        }
        let session = match (app.as_mut(), &event) {
            (Some(session), _) => session,
            // A gap before any data (the server's greeting lost) matters to the session: it
            // starts with it.
            (None, FlowEvent::Data { .. } | FlowEvent::Gap(..) | FlowEvent::CutOff(..)) => {
                let (client, certain) = roles(info, &self.config);
                let server_port = info.key.endpoint(client.other()).port;
                let server_opening_seen = info.saw_syn_from(client.other());
                app.insert(Session::new(client, certain, server_opening_seen, server_port, &self.config))
            }
            (None, FlowEvent::Closed(_) | FlowEvent::OverlapDifferentData(_)) => return Inspect::Continue,
        };
        let mut ctx = self.ctx(ts);
        match event {
            FlowEvent::Data { side, bytes, acked_all } => {
                ctx.acked_all = acked_all;
                session.on_data(side, bytes, &mut ctx);
            }
            FlowEvent::Gap(side, len) => session.on_gap(side, len, &mut ctx),
            FlowEvent::CutOff(side, len) => session.on_cut_off(side, len, &mut ctx),
            FlowEvent::Closed(_) => session.close(&mut ctx),
            FlowEvent::OverlapDifferentData(_) => {}
        }
        let done = session.done_reason().is_some();
        self.publish(info, session.client());
        if done {
            // Everything the session had to say is said: the flow keeps only its TCP state.
            *app = None;
            Inspect::Stop
        } else {
            Inspect::Continue
        }
    }

    fn buffered(&self, app: &Self::App) -> usize {
        app.as_ref().map_or(0, |session| session.buffered())
    }

    fn shed(&mut self, info: &FlowInfo, app: &mut Self::App, ts: Timestamp) {
        let Some(session) = app else { return };
        session.shed(&mut self.ctx(ts));
        self.publish(info, session.client());
    }
}

impl Inspector {
    /// What a session needs to hear a flow's event at `ts`; its events go to the scratch list
    /// until [`Inspector::publish`].
    fn ctx(&mut self, ts: Timestamp) -> Ctx<'_> {
        Ctx {
            ts,
            line_cut: false,
            acked_all: false,
            config: &self.config,
            events: &mut self.scratch,
            stats: &mut self.stats,
            server_lines: &mut self.server_lines,
        }
    }

    /// The session's events become the flow's: its endpoints named client and server.
    fn publish(&mut self, info: &FlowInfo, client: Side) {
        for proto_event in self.scratch.drain(..) {
            self.events.push(to_event(proto_event, info, client));
        }
    }

    /// Overlapping segments with different bytes: the first copy was kept, but an endpoint may
    /// have kept the other, so a detector must not be fooled silently. Raised even before the
    /// protocol is known (the overlap may come before any byte was delivered).
    fn report_overlap(&mut self, info: &FlowInfo, session: Option<&Session>, side: Side, ts: Timestamp) {
        let client = session.map_or_else(|| roles(info, &self.config).0, Session::client);
        let sender = if side == client { "client" } else { "server" };
        let anomaly = ProtoEvent::Anomaly {
            ts,
            app_proto: session.and_then(Session::app_proto),
            kind: AnomalyKind::OverlapDifferentData,
            detail: format!("{sender} segments overlapped with different bytes; the first copy was kept"),
        };
        self.events.push(to_event(anomaly, info, client));
    }
}

/// Who is the client: the SYN's sender when the handshake was seen; else the side talking to a
/// configured mail port; else the side with the higher (ephemeral-looking) port.
fn roles(info: &FlowInfo, config: &ProtoConfig) -> (Side, bool) {
    if let Some(side) = info.syn_from {
        return (side, true);
    }
    let (lo, hi) = (info.key.lo.port, info.key.hi.port);
    let client = match (config.ports.is_mail_port(lo), config.ports.is_mail_port(hi)) {
        (true, false) => Side::Hi,
        (false, true) => Side::Lo,
        _ if lo < hi => Side::Hi,
        _ => Side::Lo,
    };
    (client, false)
}

fn to_event(event: ProtoEvent, info: &FlowInfo, client: Side) -> Event {
    let client_end = info.key.endpoint(client);
    let server_end = info.key.endpoint(client.other());
    let flow = FlowMeta {
        flow_id: info.id,
        src_ip: client_end.ip,
        src_port: client_end.port,
        dest_ip: server_end.ip,
        dest_port: server_end.port,
        proto: "TCP",
        vlan: info.key.vlan.as_slice().to_vec(),
        midstream: info.midstream(),
    };
    match event {
        ProtoEvent::Credential(credential) => {
            let event_type = credential.secret.event_type();
            let mut server = credential.server;
            server.ip = Some(server_end.ip);
            server.port = server_end.port;
            Event::Credential(Box::new(CredentialAlert {
                timestamp: credential.ts,
                event_type,
                severity: event_type.severity(),
                flow,
                app_proto: credential.app_proto,
                credential: Credential {
                    mechanism: credential.mechanism,
                    secret: credential.secret,
                    username: credential.username,
                    user_key: credential.user_key,
                    username_form: credential.username_form,
                    outcome: credential.outcome,
                    secret_length: credential.secret_length,
                    secret_fingerprint: credential.secret_fingerprint,
                    partial: credential.partial,
                },
                server,
                client: credential.client,
                remediation: credential.remediation,
                schema_version: SCHEMA_VERSION,
            }))
        }
        ProtoEvent::SessionEnd(record) => {
            let mut server = record.server;
            server.ip = Some(server_end.ip);
            server.port = server_end.port;
            Event::Session(Box::new(SessionObservation {
                timestamp: record.ts,
                flow,
                app_proto: record.app_proto,
                server,
                upgraded_to_tls: record.upgraded_to_tls,
                implicit_tls: record.implicit_tls,
                starttls_refused: record.starttls_refused,
                login_refused_for_tls: record.login_refused_for_tls,
            }))
        }
        ProtoEvent::Anomaly { ts, app_proto, kind, detail } => {
            let event_type = crate::alert::EventType::Anomaly;
            Event::Anomaly(Box::new(AnomalyAlert {
                timestamp: ts,
                event_type,
                severity: event_type.severity(),
                flow,
                app_proto,
                anomaly: AnomalyInfo { kind, detail },
                schema_version: SCHEMA_VERSION,
            }))
        }
    }
}

/// Counters of one engine.
#[derive(Clone, Debug, Default)]
pub struct EngineStats {
    pub flow: FlowStats,
    pub proto: ProtoStats,
    pub active_flows: usize,
    pub buffered_bytes: usize,
}

/// Flow table plus protocol sessions: packets in, events out. Time moves only when the caller
/// says so ([`Engine::expire`]), so that every worker of a run expires flows at the same points of
/// packet time whatever the thread count.
pub struct Engine {
    table: FlowTable<Inspector>,
    inspector: Inspector,
}

impl Engine {
    pub fn new(limits: FlowLimits, config: ProtoConfig) -> Self {
        Engine {
            table: FlowTable::new(limits),
            inspector: Inspector {
                config,
                stats: ProtoStats::default(),
                scratch: Vec::new(),
                events: Vec::new(),
                server_lines: ServerLines::default(),
            },
        }
    }

    /// Feeds one TCP packet; events it completes are appended to `events`.
    pub fn process(&mut self, packet: &TcpPacket<'_>, ts: Timestamp, events: &mut Vec<Event>) {
        self.table.process(packet, ts, &mut self.inspector);
        events.append(&mut self.inspector.events);
    }

    /// Closes the flows idle for longer than their timeout at `now`; their events are appended.
    pub fn expire(&mut self, now: Timestamp, events: &mut Vec<Event>) {
        self.table.expire(now, &mut self.inspector);
        events.append(&mut self.inspector.events);
    }

    /// End of input: every flow is closed and its pending credentials reported.
    pub fn finish(&mut self, events: &mut Vec<Event>) {
        self.table.close_all(&mut self.inspector);
        events.append(&mut self.inspector.events);
    }

    pub fn stats(&self) -> EngineStats {
        EngineStats {
            flow: self.table.stats.clone(),
            proto: self.inspector.stats.clone(),
            active_flows: self.table.len(),
            buffered_bytes: self.table.buffered_bytes(),
        }
    }
}
