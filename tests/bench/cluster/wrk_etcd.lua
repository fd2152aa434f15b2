-- wrk script: etcd v3 JSON gateway put of a 16-byte value (base64) under
-- one key. Used by scripts/bench.d/cluster.sh.
local n = 0
local b64 = "MDEyMzQ1Njc4OWFiY2RlZg==" -- "0123456789abcdef"
request = function()
    n = n + 1
    local body = '{"key":"YmVuY2g=","value":"' .. b64 .. '"}'
    return wrk.format("POST", "/v3/kv/put", { ["Content-Type"] = "application/json" }, body)
end
