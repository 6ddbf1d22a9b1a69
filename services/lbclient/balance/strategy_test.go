package balance

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func capLoad(total, idle int32) Load { return Load{Total: total, Best: total, Idle: idle, Live: 1} }

func TestPerServiceStrategies(t *testing.T) {
	v, err := NewView(Options{Strategy: StrategyRoundRobin, Strategies: map[string]string{"tts": StrategyConsistentHash, "asr": StrategyP2C}})
	require.NoError(t, err)
	require.Equal(t, StrategyRoundRobin, v.StrategyName("echo"))
	require.Equal(t, StrategyConsistentHash, v.StrategyName("tts"))
	require.Equal(t, StrategyP2C, v.StrategyName("asr"))
	v.Apply([]Instance{inst("tts", "a:1", live(5), 1)}, t0)
	require.Equal(t, StrategyConsistentHash, v.Stats(t0)[0].Strategy)

	_, err = NewView(Options{Strategies: map[string]string{"tts": "nope"}})
	require.ErrorContains(t, err, "tts")
	_, err = NewView(Options{Strategy: "nope"})
	require.Error(t, err)
}

// replicaViews returns r views that know each other as lbclient replicas.
func replicaViews(t *testing.T, r int, strategy string) []*View {
	t.Helper()
	var views []*View
	for i := range r {
		v, err := NewView(Options{Strategy: strategy, ReplicaService: "lbclient", Self: fmt.Sprintf("lb%d:1", i)})
		require.NoError(t, err)
		views = append(views, v)
	}
	for _, v := range views {
		for i := range r {
			v.Report("lbclient", fmt.Sprintf("lb%d:1", i), capLoad(1, 1), 1, t0)
		}
	}
	return views
}

func TestReplicaSharesNeverOvercommit(t *testing.T) {
	for _, r := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("replicas=%d", r), func(t *testing.T) {
			views := replicaViews(t, r, StrategyLeastLoad)
			members, self := views[r-1].Replicas(t0)
			require.Len(t, members, r)
			require.Equal(t, r-1, self)
			idle := map[string]int32{"a:1": 10, "b:1": 20, "c:1": 30}
			now := t0
			for round := range 20 {
				now = now.Add(time.Second)
				// Reported idle varies per round, as sessions come and go.
				cur := map[string]int32{}
				for addr, n := range idle {
					cur[addr] = max(n-int32(round%7), 0)
					for _, v := range views {
						v.Report("echo", addr, capLoad(n, cur[addr]), uint64(round+1), now)
						v.Report("lbclient", "lb0:1", capLoad(1, 1), uint64(round+2), now)
						for i := 1; i < r; i++ {
							v.Report("lbclient", fmt.Sprintf("lb%d:1", i), capLoad(1, 1), uint64(round+2), now)
						}
					}
				}
				capacity := cur["a:1"] + cur["b:1"] + cur["c:1"]
				// Every replica picks concurrently, twice as many picks as slots.
				sent := map[string]int32{}
				var mu sync.Mutex
				var wg sync.WaitGroup
				for _, v := range views {
					wg.Go(func() {
						for range 2 * int(capacity) / r {
							got, err := v.Pick("echo", 1, nil, "", now)
							require.NoError(t, err)
							mu.Lock()
							sent[got[0]]++
							mu.Unlock()
						}
					})
				}
				wg.Wait()
				var within int32
				for addr := range idle {
					within += min(sent[addr], cur[addr])
				}
				require.Equal(t, capacity, within, "round %d: every slot used", round)
			}
			// Over-commit bound: the picks each replica made with room never exceed the
			// loader's idle; checked directly on one round with shares.
			total := map[string]int32{}
			for _, v := range views {
				for _, d := range v.Dump(now)[0].Loaders {
					total[d.Addr] += d.Share
				}
			}
			for addr := range idle {
				require.Equal(t, max(idle[addr]-int32(19%7), 0), total[addr], "shares of %s add up to its idle", addr)
			}
		})
	}
}

// idleReplicas returns 3 replica views that all hold reports of echo's loaders a:1, b:1
// and c:1 with 10, 20 and 30 idle slots, and those idle slots.
func idleReplicas(t *testing.T) ([]*View, map[string]int32) {
	t.Helper()
	views := replicaViews(t, 3, StrategyLeastLoad)
	idle := map[string]int32{"a:1": 10, "b:1": 20, "c:1": 30}
	for addr, n := range idle {
		for _, v := range views {
			v.Report("echo", addr, capLoad(n, n), 1, t0)
		}
	}
	return views, idle
}

func TestReplicaPicksWithRoomStayWithinIdle(t *testing.T) {
	// Three replicas, each receiving a third of the picks: the picks made with room
	// (not counted as over-commits) never exceed a loader's reported idle, and no
	// over-commit happens until every slot is taken.
	views, idle := idleReplicas(t)
	sent := map[string]int32{}
	for i := range 60 {
		v := views[i%3]
		before := v.Stats(t0)[0].Overcommits
		got, err := v.Pick("echo", 1, nil, "", t0)
		require.NoError(t, err)
		require.Equal(t, before, v.Stats(t0)[0].Overcommits, "pick %d over-committed while capacity remains", i)
		sent[got[0]]++
	}
	require.Equal(t, map[string]int32{"a:1": 10, "b:1": 20, "c:1": 30}, sent)
	// The 61st pick anywhere is an over-commit, still answered.
	got, err := views[0].Pick("echo", 1, nil, "", t0)
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, uint64(1), views[0].Stats(t0)[0].Overcommits)

	// Without replica accounting each view believes it owns every slot: the old
	// weakness, 3× over-commit.
	naive := []*View{newView(t, StrategyLeastLoad), newView(t, StrategyLeastLoad), newView(t, StrategyLeastLoad)}
	sent = map[string]int32{}
	for addr, n := range idle {
		for _, v := range naive {
			v.Report("echo", addr, capLoad(n, n), 1, t0)
		}
	}
	for i := range 180 {
		got, err := naive[i%3].Pick("echo", 1, nil, "", t0)
		require.NoError(t, err)
		sent[got[0]]++
	}
	require.Greater(t, sent["c:1"], int32(30))
}

func TestReplicaNotYetRegisteredGetsNoShare(t *testing.T) {
	v, err := NewView(Options{ReplicaService: "lbclient", Self: "me:1"})
	require.NoError(t, err)
	v.Report("echo", "a:1", capLoad(4, 4), 1, t0)
	// Alone and unregistered: all slots.
	require.Equal(t, int32(4), v.Dump(t0)[0].Loaders[0].Share)
	// Another replica is registered but not this one: no share until it sees itself.
	v.Report("lbclient", "other:1", capLoad(1, 1), 1, t0)
	d := v.Dump(t0)
	require.Equal(t, "echo", d[0].Service)
	require.Equal(t, int32(0), d[0].Loaders[0].Share)
	v.Report("lbclient", "me:1", capLoad(1, 1), 1, t0)
	require.Equal(t, int32(2), v.Dump(t0)[0].Loaders[0].Share)
	// The other replica stops reporting: its share comes back once it is stale.
	later := t0.Add(4 * time.Second)
	v.Report("lbclient", "me:1", capLoad(1, 1), 2, later)
	v.Report("echo", "a:1", capLoad(4, 4), 2, later)
	members, self := v.Replicas(later)
	require.Equal(t, []string{"me:1"}, members)
	require.Equal(t, 0, self)
	require.Equal(t, int32(4), v.Dump(later)[0].Loaders[0].Share)
}

func TestShareSplitsIdleExactly(t *testing.T) {
	for r := 1; r <= 5; r++ {
		for idle := int32(0); idle <= 13; idle++ {
			for h := range uint64(7) {
				var sum int32
				for self := range r {
					rs := &replicaSet{members: make([]string, r), self: self}
					s := share(idle, h, rs)
					require.GreaterOrEqual(t, s, idle/int32(r))
					require.LessOrEqual(t, s, idle/int32(r)+1)
					sum += s
				}
				require.Equal(t, idle, sum)
			}
		}
	}
}

func TestLeastLoadSpreadsInProportionToCapacity(t *testing.T) {
	// Loaders of 10, 20 and 30 licences, half used: picks follow relative idle, so
	// usage stays proportional to capacity at any utilisation.
	v := newView(t, StrategyLeastLoad)
	v.Apply([]Instance{inst("echo", "a:1", capLoad(10, 10), 1), inst("echo", "b:1", capLoad(20, 20), 1), inst("echo", "c:1", capLoad(30, 30), 1)}, t0)
	counts := map[string]int{}
	for range 30 {
		got, err := v.Pick("echo", 1, nil, "", t0)
		require.NoError(t, err)
		counts[got[0]]++
	}
	require.Equal(t, map[string]int{"a:1": 5, "b:1": 10, "c:1": 15}, counts)
}

func TestWarmingLoaderWithNoIdleComesLast(t *testing.T) {
	v := newView(t, StrategyLeastLoad)
	v.Apply([]Instance{inst("echo", "warm:1", capLoad(100, 0), 1), inst("echo", "old:1", capLoad(2, 1), 1)}, t0)
	got, err := v.Pick("echo", 2, nil, "", t0)
	require.NoError(t, err)
	require.Equal(t, []string{"old:1", "warm:1"}, got)
}

func TestP2CPrefersRoomAndWeight(t *testing.T) {
	v := newView(t, StrategyP2C)
	v.Apply([]Instance{
		inst("echo", "full:1", capLoad(10, 0), 1),
		{Service: "echo", Addr: "light:1", Load: capLoad(1000, 1000), Admin: &Admin{Enabled: true, Weight: 100}, Seq: 1},
		{Service: "echo", Addr: "heavy:1", Load: capLoad(1000, 1000), Admin: &Admin{Enabled: true, Weight: 300}, Seq: 1},
		{Service: "echo", Addr: "zero:1", Load: capLoad(1000, 1000), Admin: &Admin{Enabled: true, Weight: 0}, Seq: 1},
	}, t0)
	counts := map[string]int{}
	for range 400 {
		got, err := v.Pick("echo", 4, nil, "", t0)
		require.NoError(t, err)
		require.Len(t, got, 4)
		counts[got[0]]++
	}
	require.Zero(t, counts["full:1"], "never first while others have room")
	require.Zero(t, counts["zero:1"], "weight 0 is never drawn while others weigh")
	require.Greater(t, counts["heavy:1"], 2*counts["light:1"], "%v", counts)
	require.Zero(t, v.Stats(t0)[0].Overcommits)
}

// chView is a consistent-hash view of loaders a..(n-1) with big licences.
func chOwners(t *testing.T, addrs []string, keys []string) map[string]string {
	t.Helper()
	v := newView(t, StrategyConsistentHash)
	now := t0
	owner := map[string]string{}
	for i, k := range keys {
		if i%50 == 0 {
			// Fresh reports keep every loader idle, so the load bound never binds.
			now = now.Add(time.Second)
			for _, a := range addrs {
				v.Report("echo", a, capLoad(1000, 1000), uint64(i+1), now)
			}
		}
		got, err := v.Pick("echo", 1, nil, k, now)
		require.NoError(t, err)
		owner[k] = got[0]
	}
	return owner
}

func TestConsistentHashMovesFewKeysWhenALoaderJoins(t *testing.T) {
	keys := make([]string, 10000)
	for i := range keys {
		keys[i] = fmt.Sprintf("uid-%d", i)
	}
	three := []string{"10.0.0.1:5090", "10.0.0.2:5090", "10.0.0.3:5090"}
	before := chOwners(t, three, keys)
	after := chOwners(t, append(three, "10.0.0.4:5090"), keys)
	kept, toNew := 0, 0
	for _, k := range keys {
		switch after[k] {
		case before[k]:
			kept++
		case "10.0.0.4:5090":
			toNew++
		}
	}
	// Only keys taken by the new loader move: none moves between the old ones.
	require.Equal(t, len(keys), kept+toNew)
	require.GreaterOrEqual(t, float64(kept)/float64(len(keys)-toNew), 0.95)
	require.InDelta(t, 0.25, float64(toNew)/float64(len(keys)), 0.1, "the new loader takes about its share")

	// The same key goes to the same loader.
	again := chOwners(t, three, keys[:100])
	for _, k := range keys[:100] {
		require.Equal(t, before[k], again[k])
	}
}

func TestConsistentHashBoundedLoadUnderSkew(t *testing.T) {
	v := newView(t, StrategyConsistentHash)
	addrs := []string{"a:1", "b:1", "c:1", "d:1"}
	for _, a := range addrs {
		v.Report("echo", a, capLoad(100, 100), 1, t0)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	zipf := rand.NewZipf(rng, 1.3, 1, 1000)
	for range 300 {
		// Sessions stay open (no new report): the picks are the load.
		_, err := v.Pick("echo", 1, nil, fmt.Sprintf("key-%d", zipf.Uint64()), t0)
		require.NoError(t, err)
	}
	used := map[string]int32{}
	var sum int32
	for _, d := range v.Dump(t0)[0].Loaders {
		used[d.Addr] = d.InFlight
		sum += d.InFlight
	}
	require.Equal(t, int32(300), sum)
	bound := int32(math.Ceil((1 + DefaultEpsilon) * float64(sum) / 4))
	for a, u := range used {
		require.LessOrEqual(t, u, bound+1, "%s holds %d of %d sessions: %v", a, u, sum, used)
	}
	require.Zero(t, v.Stats(t0)[0].Overcommits)

	// A hot key keeps its loader while that loader is under the bound.
	v2 := newView(t, StrategyConsistentHash)
	for _, a := range addrs {
		v2.Report("echo", a, capLoad(100, 100), 1, t0)
	}
	first, err := v2.Pick("echo", 1, nil, "hot", t0)
	require.NoError(t, err)
	for range 20 {
		got, err := v2.Pick("echo", 1, nil, "hot", t0)
		require.NoError(t, err)
		require.Equal(t, first, got, "under ε of its licences a loader keeps its keys")
	}
}

func TestConsistentHashSkipsExcludedAndFullLoaders(t *testing.T) {
	v := newView(t, StrategyConsistentHash)
	now := t0
	for i := range 50 {
		now = now.Add(time.Second)
		v.Apply([]Instance{inst("echo", "a:1", capLoad(10, 10), uint64(i+1)), inst("echo", "b:1", capLoad(10, 10), uint64(i+1)), inst("echo", "c:1", capLoad(10, 0), uint64(i+1))}, now)
		key := fmt.Sprintf("k%d", i)
		got, err := v.Pick("echo", 3, nil, key, now)
		require.NoError(t, err)
		require.Len(t, got, 3)
		require.NotEqual(t, "c:1", got[0], "full loader first for %s", key)
		got2, err := v.Pick("echo", 2, []string{got[0]}, key, now)
		require.NoError(t, err)
		require.NotContains(t, got2, got[0])
	}
}

func TestRankSmallInputs(t *testing.T) {
	for _, name := range Strategies {
		st, err := NewStrategy(name)
		require.NoError(t, err)
		require.Equal(t, name, st.Name())
		require.Empty(t, st.Rank(NewState("x"), nil, "", 1))
		one := []Candidate{{Addr: "a:1", Room: 1, Free: 1, Load: capLoad(1, 1), Weight: 100}}
		require.Equal(t, one, st.Rank(NewState("x"), one, "k", 1))
	}
}
