/*
 * A push to Pyroscope's push API (push.v1.PusherService/Push) through the Connect protocol's
 * own Node.js client (@connectrpc/connect-node, pinned in package-lock.json), as Grafana Alloy's
 * pyroscope.write sends it. The message types are declared at run time from Pyroscope's
 * published schema (same field numbers as lib/pushv1.proto); nothing here knows fleetsymd.
 *
 *   node push.js < SPEC.json
 * SPEC: {"url": "http://127.0.0.1:PORT", "token": "...", "binary": true,
 *        "series": [{"labels": {"__name__": "process_cpu", "service_name": "x", ...},
 *                    "samples": [{"file": "a.pb.gz", "id": "uuid"}, ...]}, ...]}
 * Prints {"ok": true} or {"code": "invalid_argument", "message": "..."} (the client's error).
 */
'use strict';
const fs = require('fs');
const { proto3, ScalarType, MethodKind } = require('@bufbuild/protobuf');
const { createPromiseClient, ConnectError, Code } = require('@connectrpc/connect');
const { createConnectTransport } = require('@connectrpc/connect-node');

const LabelPair = proto3.makeMessageType('types.v1.LabelPair', [
	{ no: 1, name: 'name', kind: 'scalar', T: ScalarType.STRING },
	{ no: 2, name: 'value', kind: 'scalar', T: ScalarType.STRING },
]);
const RawSample = proto3.makeMessageType('push.v1.RawSample', [
	{ no: 1, name: 'raw_profile', kind: 'scalar', T: ScalarType.BYTES },
	{ no: 2, name: 'ID', kind: 'scalar', T: ScalarType.STRING },
]);
const RawProfileSeries = proto3.makeMessageType('push.v1.RawProfileSeries', [
	{ no: 1, name: 'labels', kind: 'message', T: LabelPair, repeated: true },
	{ no: 2, name: 'samples', kind: 'message', T: RawSample, repeated: true },
]);
const PushRequest = proto3.makeMessageType('push.v1.PushRequest', [
	{ no: 1, name: 'series', kind: 'message', T: RawProfileSeries, repeated: true },
]);
const PushResponse = proto3.makeMessageType('push.v1.PushResponse', []);
const PusherService = {
	typeName: 'push.v1.PusherService',
	methods: { push: { name: 'Push', I: PushRequest, O: PushResponse, kind: MethodKind.Unary } },
};

async function main() {
	const spec = JSON.parse(fs.readFileSync(0, 'utf8'));
	const transport = createConnectTransport({
		baseUrl: spec.url, httpVersion: '1.1', useBinaryFormat: spec.binary,
	});
	const client = createPromiseClient(PusherService, transport);
	const req = new PushRequest({
		series: spec.series.map((s) => ({
			labels: Object.entries(s.labels).map(([name, value]) => ({ name, value })),
			samples: s.samples.map((x) => ({ rawProfile: fs.readFileSync(x.file), ID: x.id })),
		})),
	});
	const headers = spec.token ? { Authorization: 'Bearer ' + spec.token } : {};
	try {
		await client.push(req, { headers, timeoutMs: 30000 });
		console.log(JSON.stringify({ ok: true }));
	} catch (e) {
		const err = ConnectError.from(e);
		const name = Code[err.code].replace(/[A-Z]/g, (c, i) => (i ? '_' : '') + c.toLowerCase());
		console.log(JSON.stringify({ code: name, message: err.rawMessage }));
	}
}

main().catch((e) => {
	console.log(JSON.stringify({ code: 'client_failed', message: String(e && e.stack) }));
	process.exit(1);
});
