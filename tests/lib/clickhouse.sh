# Sourced by the ClickHouse tests after tests/lib/service.sh: a clickhouse-server of their own
# (Debian 12's 18.16), config and data under $T/ch, 127.0.0.1 only, user fleetsym with the
# password in $T/ch/auth (for --store-auth-file).
mkdir -p "$T/ch/data" "$T/ch/tmp"
cat >"$T/ch/users.xml" <<'EOF'
<yandex>
  <profiles><default></default></profiles>
  <users><fleetsym><password>s3cret</password><networks><ip>127.0.0.1</ip></networks>
    <profile>default</profile><quota>default</quota></fleetsym></users>
  <quotas><default></default></quotas>
</yandex>
EOF
echo 'fleetsym:s3cret' >"$T/ch/auth"
chmod 600 "$T/ch/auth"

ch_answers() { [ "$(curl -s -u fleetsym:s3cret "http://127.0.0.1:$CH_HTTP/?query=SELECT%201")" = 1 ]; }

# start_clickhouse [HTTP_PORT TCP_PORT]: a server on free ports (retried), up when it answers
# SELECT 1 as our user; sets CH_PID, CH_HTTP, CH_TCP.
start_clickhouse() {
	local tries=5
	[ $# = 2 ] && tries=1
	for _ in $(seq $tries); do
		CH_HTTP=${1:-$((20000 + RANDOM % 30000))}
		CH_TCP=${2:-$((20000 + RANDOM % 30000))}
		cat >"$T/ch/config.xml" <<EOF
<yandex>
  <logger><level>warning</level><console>1</console></logger>
  <http_port>$CH_HTTP</http_port>
  <tcp_port>$CH_TCP</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>$T/ch/data/</path>
  <tmp_path>$T/ch/tmp/</tmp_path>
  <mark_cache_size>268435456</mark_cache_size>
  <users_config>$T/ch/users.xml</users_config>
</yandex>
EOF
		clickhouse-server --config-file="$T/ch/config.xml" >>"$T/ch/server.log" 2>&1 &
		CH_PID=$!
		await_up "$CH_PID" 600 ch_answers && return 0 # 60 s: ~5 s on an idle host
	done
	echo "FAILED: clickhouse-server did not come up:"
	tail -20 "$T/ch/server.log"
	exit 1
}

# ch_query SQL: its answer, as our user
ch_query() {
	curl -s -u fleetsym:s3cret "http://127.0.0.1:$CH_HTTP/" --data-binary "$1"
}
