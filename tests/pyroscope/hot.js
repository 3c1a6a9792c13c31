// tests/run-pyroscope.sh: a Node.js program with a known hot function, profiled by the
// unchanged Pyroscope client (@pyroscope/nodejs) pushing to fleetsymd's POST /ingest.
// argv: SERVER TOKEN SECONDS
const Pyroscope = require('@pyroscope/nodejs');

const [server, token, seconds] = process.argv.slice(2);
Pyroscope.init({
	serverAddress: server,
	appName: 'nodehot',
	tags: { region: 'eu-test', build: 'b42' },
	basicAuthUser: 'anyone',
	basicAuthPassword: token,
	flushIntervalMs: 2000,
});
Pyroscope.start();

let sink = 0;
function fleetsymHotLoop(ms) {
	const end = Date.now() + ms;
	while (Date.now() < end)
		for (let i = 0; i < 100000; i++)
			sink = (sink * 1103515245 + 12345) % 2147483648;
}
function coldSleepish(ms) {
	const end = Date.now() + ms;
	while (Date.now() < end)
		sink ^= 1;
}

const stopAt = Date.now() + seconds * 1000;
function tick() {
	if (Date.now() >= stopAt) {
		Pyroscope.stop().then(() => process.exit(0));
		return;
	}
	fleetsymHotLoop(180);
	coldSleepish(20);
	setImmediate(tick);
}
tick();
