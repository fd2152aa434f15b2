%% Erlang/OTP side of the "agents" benchmark suite: the same measurements
%% as bench_agents.c, on BEAM processes, printed as "metric value unit"
%% lines (medians of repeated runs). Run by scripts/bench.d/agents.sh:
%%   erlc bench_agents.erl && erl +P 4000000 -noshell -s bench_agents main
-module(bench_agents).
-behaviour(supervisor).
-export([main/0, main/1, init/1, worker_start/0]).

now_ns() -> erlang:monotonic_time(nanosecond).

median(L) ->
    S = lists:sort(L),
    N = length(S),
    case N rem 2 of
        1 -> lists:nth(N div 2 + 1, S);
        0 -> (lists:nth(N div 2, S) + lists:nth(N div 2 + 1, S)) / 2
    end.

rss() ->
    {ok, B} = file:read_file("/proc/self/statm"),
    [_, R | _] = string:tokens(binary_to_list(B), " \n"),
    list_to_integer(R) * 4096.

idle() -> receive stop -> ok end.

spawn_n(0, Acc) -> Acc;
spawn_n(N, Acc) -> spawn_n(N - 1, [spawn(fun idle/0) | Acc]).

stop_all(Pids) ->
    [P ! stop || P <- Pids],
    wait_gone(Pids).

wait_gone(Pids) ->
    case lists:any(fun erlang:is_process_alive/1, Pids) of
        true -> timer:sleep(10), wait_gone(Pids);
        false -> ok
    end.

%% ns per spawn; bytes per process (RSS delta and erlang:memory(processes)).
bench_spawn(N) ->
    erlang:garbage_collect(),
    R0 = rss(),
    M0 = erlang:memory(processes),
    T0 = now_ns(),
    Pids = spawn_n(N, []),
    T1 = now_ns(),
    R1 = rss(),
    M1 = erlang:memory(processes),
    stop_all(Pids),
    %% the list of pids costs 2 words per element: not the processes'
    {(T1 - T0) / N, (R1 - R0 - 16 * N) / N, (M1 - M0) / N}.

pong() ->
    receive
        {From, ping} -> From ! pong, pong();
        stop -> ok
    end.

ping(_, 0) -> ok;
ping(P, N) ->
    P ! {self(), ping},
    receive pong -> ping(P, N - 1) end.

bench_pingpong(N) ->
    Self = self(),
    Pong = spawn(fun pong/0),
    Pinger = spawn(fun() ->
                           T0 = now_ns(),
                           ping(Pong, N),
                           Self ! {done, now_ns() - T0}
                   end),
    receive {done, T} -> ok end,
    Pong ! stop,
    _ = Pinger,
    T / N.

sink(0, Parent) -> Parent ! sink_done;
sink(N, Parent) -> receive _ -> sink(N - 1, Parent) end.

sender(_, 0) -> ok;
sender(Sink, N) -> Sink ! msg, sender(Sink, N - 1).

bench_throughput(K, Per) ->
    Self = self(),
    Sinks = [spawn(fun() -> sink(Per, Self) end) || _ <- lists:seq(1, K)],
    T0 = now_ns(),
    [spawn(fun() -> sender(S, Per) end) || S <- Sinks],
    [receive sink_done -> ok end || _ <- Sinks],
    T1 = now_ns(),
    K * Per / ((T1 - T0) / 1.0e9).

%% Supervised restart: one_for_one supervisor, a registered child whose
%% init restores its state from an ETS "checkpoint".
init([]) ->
    {ok, {{one_for_one, 1000000, 1},
          [{victim, {bench_agents, worker_start, []}, permanent, brutal_kill, worker,
            [bench_agents]}]}}.

worker_start() ->
    Pid = spawn_link(fun() ->
                             [{k, V}] = ets:lookup(bench_ckpt, k),
                             [{bench, B}] = ets:lookup(bench_ckpt, bench),
                             B ! {restored, self(), now_ns()},
                             victim_loop(V)
                     end),
    {ok, Pid}.

victim_loop(V) ->
    receive
        crash -> exit(crash);
        _ -> victim_loop(V)
    end.

%% The restarted child stamps the time once its state is restored (as the
%% C side does in its restore callback) and tells the bench process.
restarted() ->
    receive {restored, Pid, T} -> {Pid, T} end.

restart_samples(0, _, Acc) -> Acc;
restart_samples(N, Pid, Acc) ->
    T0 = now_ns(),
    Pid ! crash,
    {New, T1} = restarted(),
    restart_samples(N - 1, New, [T1 - T0 | Acc]).

bench_restart(Samples) ->
    ets:new(bench_ckpt, [named_table, public]),
    ets:insert(bench_ckpt, {k, 42}),
    ets:insert(bench_ckpt, {bench, self()}),
    {ok, Sup} = supervisor:start_link({local, bench_sup}, ?MODULE, []),
    unlink(Sup),
    {Pid, _} = restarted(),
    L = restart_samples(Samples, Pid, []),
    exit(Sup, shutdown),
    median(L).

out(Name, Value, Unit) ->
    io:format("~s ~.1f ~s~n", [Name, float(Value), Unit]).

main() -> main([full]).

main(Args) ->
    logger:set_primary_config(level, none), % no supervisor reports per crash
    Quick = lists:member(quick, Args),
    Runs = case Quick of true -> 1; false -> 3 end,
    S100 = [element(1, bench_spawn(100000)) || _ <- lists:seq(1, Runs)],
    out("spawn_100k_ns_per_agent", median(S100), "ns"),
    M = [bench_spawn(1000000) || _ <- lists:seq(1, Runs)],
    out("spawn_1m_ns_per_agent", median([element(1, X) || X <- M]), "ns"),
    out("memory_per_idle_agent_rss", median([element(2, X) || X <- M]), "bytes"),
    out("memory_per_idle_agent_malloc", median([element(3, X) || X <- M]), "bytes"),
    PR = case Quick of true -> 1; false -> 5 end,
    PP = [bench_pingpong(case Quick of true -> 100000; false -> 500000 end)
          || _ <- lists:seq(1, PR)],
    out("pingpong_round_trip_ns", median(PP), "ns"),
    TP = [bench_throughput(4, case Quick of true -> 500000; false -> 2000000 end)
          || _ <- lists:seq(1, PR)],
    out("throughput_msgs_per_s", median(TP), "msg/s"),
    out("restart_supervised_ns",
        bench_restart(case Quick of true -> 200; false -> 2000 end), "ns"),
    init:stop().
