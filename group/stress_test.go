package group

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestRandomOperations runs every request concurrently with random
// arguments drawn from small pools (so they meet the same groups and
// members) and short timeouts: nothing may panic, race, deadlock or leave
// a request parked past its context.
func TestRandomOperations(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.InitialRebalanceDelay = 20 * time.Millisecond })
	groups := []string{"g1", "g2"}
	var mu sync.Mutex
	members := []string{"", "unknown"}
	instances := []*string{nil, kmsg.StringPtr("i1"), kmsg.StringPtr("i2")}
	remember := func(id string) {
		if id != "" {
			mu.Lock()
			members = append(members, id)
			mu.Unlock()
		}
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			pick := func() string {
				mu.Lock()
				defer mu.Unlock()
				return members[rng.IntN(len(members))]
			}
			// Each worker is a client that mostly follows the protocol with
			// its own member id and generation, and now and then sends
			// someone else's.
			own, ownGen, ownGroup := "", int32(-1), groups[w%len(groups)]
			for range 300 {
				g, member, gen, inst := ownGroup, own, ownGen, instances[w%len(instances)]
				if rng.IntN(4) == 0 {
					g, member, gen, inst = groups[rng.IntN(len(groups))], pick(), int32(rng.IntN(4))-1, instances[rng.IntN(len(instances))]
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rng.IntN(300))*time.Millisecond)
				switch rng.IntN(10) {
				case 0, 1, 2:
					req := joinReq(g, member, int16(5+rng.IntN(5)), 200*time.Millisecond, 150*time.Millisecond)
					req.InstanceID = inst
					r := e.c.JoinGroup(ctx, req, Client{ID: fmt.Sprint("w", w)})
					remember(r.MemberID)
					switch {
					case g != ownGroup:
					case r.ErrorCode == kerr.UnknownMemberID.Code || r.ErrorCode == kerr.FencedInstanceID.Code:
						own, ownGen = "", -1
					case r.MemberID != "":
						own, ownGen = r.MemberID, r.Generation
					}
					if r.LeaderID == r.MemberID && r.ErrorCode == 0 {
						assign := map[string][]byte{}
						for _, m := range r.Members {
							assign[m.MemberID] = []byte(m.MemberID)
						}
						e.sync(g, r.MemberID, r.Generation, assign)
					}
				case 3:
					req := kmsg.NewPtrSyncGroupRequest()
					req.Version, req.Group, req.MemberID, req.Generation, req.InstanceID = 5, g, member, gen, inst
					e.c.SyncGroup(ctx, req)
				case 4, 5:
					e.heartbeat(g, member, gen, inst)
				case 6:
					req := kmsg.NewPtrLeaveGroupRequest()
					req.Version, req.Group = 5, g
					m := kmsg.NewLeaveGroupRequestMember()
					m.MemberID, m.InstanceID = member, inst
					req.Members = append(req.Members, m)
					e.c.LeaveGroup(req)
				case 7:
					e.commit(int16(rng.IntN(10)), g, member, gen, "a", rng.Int64N(100), int32(rng.IntN(4)))
				case 8:
					e.fetch(g, "")
					e.describe(g)
					e.list()
				case 9:
					switch rng.IntN(9) {
					case 0:
						req := kmsg.NewPtrDeleteGroupsRequest()
						req.Groups = []string{g}
						e.c.DeleteGroups(req)
					case 1:
						e.c.expireOffsets()
					default:
						e.c.compact()
					}
				}
				cancel()
			}
		})
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("operations did not finish: a deadlock or a request parked past its context")
	}
}
