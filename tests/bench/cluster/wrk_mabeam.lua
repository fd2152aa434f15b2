-- wrk script: PUT /v1/vars/bench with a float value (the JSON body is about
-- as long as etcd's 16-byte value). Used by scripts/bench.d/cluster.sh.
local n = 0
request = function()
    n = n + 1
    local body = string.format('{"value":0.%012d}', n % 1000000000000)
    return wrk.format("PUT", "/v1/vars/bench", { ["Content-Type"] = "application/json" }, body)
end
