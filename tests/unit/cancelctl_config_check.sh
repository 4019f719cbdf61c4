#!/usr/bin/env bash
# cancelctl config check: the loader's verdict on a config file, with no
# database, broker or gateway anywhere (the DSN and brokers below point at
# nothing). Each case prints "ok"/"FAIL"; exit 1 if any failed.
#
# Usage: cancelctl_config_check.sh CANCELCTL   (run from the repo root)
set -euo pipefail

cancelctl="$1"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
failed=0

# expect NAME RC PATTERN CMD...: CMD exits RC and its stdout+stderr match PATTERN.
expect() {
    local name="$1" want_rc="$2" pattern="$3" rc=0
    shift 3
    "$@" >"$tmp/out" 2>&1 || rc=$?
    if [[ $rc -eq $want_rc ]] && grep -Eq -- "$pattern" "$tmp/out"; then
        echo "ok: $name"
    else
        echo "FAIL: $name: exit $rc (want $want_rc), output:"
        sed 's/^/    /' "$tmp/out"
        failed=1
    fi
}

# refute NAME WORD: the output of the last expect does not hold WORD.
refute() {
    if grep -Fq -- "$2" "$tmp/out"; then
        echo "FAIL: $1: the output holds \"$2\""
        failed=1
    else
        echo "ok: $1"
    fi
}

# A config whose every secret is set, pointing at nothing that answers.
example=config/cancel-retry.example.yaml
secrets=(CANCEL_RETRY_DB_DSN='host=192.0.2.1 dbname=x password=hunter2-secret'
    KAFKA_BOOTSTRAP_SERVERS=192.0.2.1:9092 KAFKA_SASL_USERNAME=u KAFKA_SASL_PASSWORD=p
    TOSS_SECRET_KEY=test_sk_toss STRIPE_SECRET_KEY=sk_test_stripe
    PORTONE_API_SECRET=portone_test KAKAOPAY_SECRET_KEY=kakaopay_test KAKAOPAY_CID=TC0ONETIME
    ADYEN_CHECKOUT_URL=https://checkout-test.adyen.com/v71 ADYEN_API_KEY=adyen_test
    ADYEN_MERCHANT_ACCOUNT=M ADYEN_WEBHOOK_HMAC_KEY=44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056
    SLACK_WEBHOOK_URL=https://hooks.example.invalid/a SLACK_WEBHOOK_URL_STRIPE=https://hooks.example.invalid/b)

expect "the production example loads, nothing connected" 0 "^$example: ok \(5 gateways, metrics 127.0.0.1:9100\)$" \
    env "${secrets[@]}" timeout 10 "$cancelctl" --config "$example" config check
expect "--json gives the metrics listen address after \${VAR} expansion" 0 '"metricsListen": "127.0.0.1:9200"' \
    env "${secrets[@]}" METRICS_PORT=9200 "$cancelctl" --json --config "$example" config check
expect "a missing secret names its variable" 1 'database.dsn: environment variable CANCEL_RETRY_DB_DSN is not set' \
    env -u CANCEL_RETRY_DB_DSN "${secrets[@]:1}" "$cancelctl" --config "$example" config check

sed 's/^  batch_size: 500$/  batch_sise: 500/' "$example" >"$tmp/unknown-key.yaml"
expect "an unknown key names file, line and key" 1 "unknown-key.yaml:[0-9]+: relay.batch_sise" \
    env "${secrets[@]}" "$cancelctl" --config "$tmp/unknown-key.yaml" config check

# librdkafka judges the kafka: map only when a client is made: check does.
sed 's/^  client.id: cancel-retry$/  client.id: cancel-retry\n  no.such.property: 1/' "$example" >"$tmp/kafka.yaml"
expect "a property librdkafka refuses names file, line and key" 1 "kafka.yaml:[0-9]+: kafka.no.such.property" \
    env "${secrets[@]}" "$cancelctl" --config "$tmp/kafka.yaml" config check

# An error that quotes a value quotes a secret masked.
sed 's/^  security.protocol: SASL_SSL$/  security.protocol: "${KAFKA_SASL_PASSWORD}"/' "$example" >"$tmp/leak.yaml"
expect "a refused secret value is named, not printed" 1 "leak.yaml:[0-9]+: kafka.security.protocol" \
    env "${secrets[@]}" KAFKA_SASL_PASSWORD=hunter2-kafka "$cancelctl" --config "$tmp/leak.yaml" config check
refute "the refused secret value is masked" hunter2-kafka

expect "a usage error without a subcommand" 2 'missing subcommand' "$cancelctl" config
expect "a usage error for another subcommand" 2 'unknown subcommand "show"' "$cancelctl" config show

exit "$failed"
