// zkgo drives go-zookeeper (github.com/samuel/go-zookeeper/zk, Debian's
// golang-github-samuel-go-zookeeper-dev) against a ZooKeeper-compatible server, printing one
// deterministic line per step: error names, data, versions, child lists, ACLs, event types and
// paths, never session ids, zxids or times. Each step's expected result (what Apache ZooKeeper
// 3.8 does) is in the code too: a step that differs is reported on stderr and the run exits 1.
// A step that does not finish within 10 s ends the run at once with exit code 2.
//
//	zkgo host:port[,host:port...]
//
// The Debian snapshot (c4fab1a, 2018-01-30) has no createContainer/createTTL (ZooKeeper 3.5)
// and no addWatch (persistent and recursive watches, ZooKeeper 3.6), so those are not tried.
// Nor can it be told to reconnect: the test's own dialer closes the TCP connection instead and
// holds the next dial until the other session has made its changes.
package main

import (
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/samuel/go-zookeeper/zk"
)

const (
	base           = "/go-compat" // removed first, so sequence numbers start at 0 every run
	stepTimeout    = 10 * time.Second
	sessionTimeout = 9 * time.Second // within [2, 20] tickTimes for tickTime 500 and 2000
)

var (
	servers    []string
	world      = zk.WorldACL(zk.PermAll)
	watchdog   *time.Timer
	stepMu     sync.Mutex
	step       string
	mismatches int
)

// do runs one step, which must finish within stepTimeout, prints its result, and counts a
// mismatch unless the result is want.
func do(name, want string, run func() string) {
	stepMu.Lock()
	step = name
	stepMu.Unlock()
	watchdog.Reset(stepTimeout)
	got := run()
	fmt.Printf("%s: %s\n", name, got)
	if got != want {
		mismatches++
		fmt.Fprintf(os.Stderr, "zkgo: MISMATCH in %q:\n  got  %s\n  want %s\n", name, got, want)
	}
}

func timedOut() {
	stepMu.Lock()
	fmt.Printf("%s: TIMEOUT\n", step)
	fmt.Fprintf(os.Stderr, "zkgo: step %q did not finish within %v\n", step, stepTimeout)
	os.Exit(2)
}

func fatal(err error) {
	fmt.Fprintf(os.Stderr, "zkgo: %v\n", err)
	os.Exit(1)
}

var errNames = map[error]string{
	nil: "ok", zk.ErrNoNode: "NoNode", zk.ErrNodeExists: "NodeExists", zk.ErrBadVersion: "BadVersion",
	zk.ErrNotEmpty: "NotEmpty", zk.ErrNoAuth: "NoAuth", zk.ErrInvalidACL: "InvalidACL",
	zk.ErrNoChildrenForEphemerals: "NoChildrenForEphemerals", zk.ErrUnknown: "Unknown",
}

func name(err error) string {
	if n, ok := errNames[err]; ok {
		return n
	}
	return err.Error()
}

// res is the error's name, or the formatted result when there is no error.
func res(err error, format string, args ...interface{}) string {
	if err != nil {
		return name(err)
	}
	return fmt.Sprintf(format, args...)
}

func data(d []byte, st *zk.Stat, err error) string {
	if err != nil {
		return name(err) // st may be nil
	}
	return fmt.Sprintf("%q version=%d", d, st.Version)
}

func version(st *zk.Stat, err error) string        { return res(err, "version=%d", st.Version) } // Set's st is never nil
func created(path string, err error) string        { return res(err, "%s", path) }
func exists(ok bool, _ *zk.Stat, err error) string { return res(err, "%v", ok) }

func children(names []string, _ *zk.Stat, err error) string {
	sort.Strings(names)
	return res(err, "%v", names)
}

func acls(list []zk.ACL, _ *zk.Stat, err error) string {
	parts := make([]string, len(list))
	for i, a := range list {
		parts[i] = fmt.Sprintf("%s:%s:%d", a.Scheme, a.ID, a.Perms)
	}
	return res(err, "%s", strings.Join(parts, ", "))
}

// multi is Multi's error, then each op's result as go-zookeeper exposes it.
func multi(results []zk.MultiResponse, err error) string {
	parts := []string{name(err)}
	for _, r := range results {
		part := name(r.Error)
		if r.String != "" {
			part += " " + r.String
		}
		if r.Stat != nil {
			part += fmt.Sprintf(" version=%d", r.Stat.Version)
		}
		parts = append(parts, part)
	}
	return strings.Join(parts, "; ")
}

func event(ev zk.Event) string {
	if ev.Err != nil {
		return fmt.Sprintf("%s %s (%v)", ev.Type, ev.Path, ev.Err)
	}
	return fmt.Sprintf("%s %s", ev.Type, ev.Path)
}

func wait(ch <-chan zk.Event) string { return event(<-ch) }

// client is a session whose TCP connection the test can drop, and which records every watch
// event in arrival order.
type client struct {
	*zk.Conn
	mu     sync.Mutex
	conn   net.Conn
	hold   sync.Mutex // held by drop until the reconnection may go ahead
	events []string
}

func connect() *client {
	c := &client{}
	conn, _, err := zk.Connect(servers, sessionTimeout, zk.WithDialer(c.dial), zk.WithLogInfo(false),
		zk.WithEventCallback(c.record))
	if err != nil {
		fatal(err)
	}
	c.Conn = conn
	c.waitState(zk.StateHasSession)
	return c
}

func (c *client) dial(network, address string, timeout time.Duration) (net.Conn, error) {
	c.hold.Lock()
	c.hold.Unlock()
	conn, err := net.DialTimeout(network, address, timeout)
	if err == nil {
		c.mu.Lock()
		c.conn = conn
		c.mu.Unlock()
	}
	return conn, err
}

func (c *client) record(ev zk.Event) {
	if ev.Type != zk.EventSession {
		c.mu.Lock()
		c.events = append(c.events, event(ev))
		c.mu.Unlock()
	}
}

// takeEvents returns the watch events received since the last call, in arrival order.
func (c *client) takeEvents() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	events := c.events
	c.events = nil
	return events
}

func (c *client) waitState(state zk.State) {
	for c.State() != state {
		time.Sleep(5 * time.Millisecond)
	}
}

// drop closes the TCP connection and holds the reconnection until the returned func is called.
func (c *client) drop() (reconnect func()) {
	c.hold.Lock()
	c.mu.Lock()
	c.conn.Close()
	c.mu.Unlock()
	for c.State() == zk.StateHasSession {
		time.Sleep(5 * time.Millisecond)
	}
	return c.hold.Unlock
}

// removeTree deletes path and everything under it (the nodes it may not list are leaves).
// existsW, getW and childrenW set a watch, keep its channel in ch, and return the result.
func (c *client) existsW(path string, ch *<-chan zk.Event) string {
	ok, st, watch, err := c.ExistsW(path)
	*ch = watch
	return exists(ok, st, err)
}

func (c *client) getW(path string, ch *<-chan zk.Event) string {
	d, st, watch, err := c.GetW(path)
	*ch = watch
	return data(d, st, err)
}

func (c *client) childrenW(path string, ch *<-chan zk.Event) string {
	kids, st, watch, err := c.ChildrenW(path)
	*ch = watch
	return children(kids, st, err)
}

func removeTree(c *client, path string) string {
	kids, _, err := c.Children(path)
	if err == zk.ErrNoNode {
		return "ok"
	}
	for _, kid := range kids {
		removeTree(c, path+"/"+kid)
	}
	if err := c.Delete(path, -1); err != nil && err != zk.ErrNoNode {
		fatal(fmt.Errorf("delete %s: %v", path, err))
	}
	return "ok"
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: zkgo host:port[,host:port...]")
		os.Exit(2)
	}
	servers = strings.Split(os.Args[1], ",")
	watchdog = time.AfterFunc(stepTimeout, timedOut)
	var a, b *client
	do("connect two sessions", "ok", func() string { a, b = connect(), connect(); return "ok" })
	do("remove "+base+" left by an earlier run", "ok", func() string { return removeTree(b, base) })
	createAndErrors(a)
	watches(a, b)
	multis(a)
	auth(a, b)
	syncThenGet(a, b)
	reconnect(a, b)
	authAfterReconnect(a, b)
	ephemeralsVanish(a, b)
	do("remove "+base, "ok", func() string { return removeTree(b, base) })
	b.Close()
	watchdog.Stop()
	if mismatches > 0 {
		fatal(fmt.Errorf("%d steps differ from Apache ZooKeeper's results", mismatches))
	}
}

func createAndErrors(a *client) {
	p, seq := base+"/p", base+"/seq"
	do("create "+base, base, func() string { return created(a.Create(base, []byte("root"), 0, world)) })
	do("create persistent "+p, p, func() string { return created(a.Create(p, []byte("v0"), 0, world)) })
	do("create ephemeral "+base+"/e", base+"/e", func() string { return created(a.Create(base+"/e", nil, zk.FlagEphemeral, world)) })
	do("exists "+base+"/e: owned by this session", "true", func() string {
		_, st, err := a.Exists(base + "/e")
		return exists(st.EphemeralOwner == a.SessionID(), nil, err)
	})
	do("create "+seq, seq, func() string { return created(a.Create(seq, nil, 0, world)) })
	do("create sequential "+seq+"/s-", seq+"/s-0000000000", func() string { return created(a.Create(seq+"/s-", nil, zk.FlagSequence, world)) })
	do("create sequential "+seq+"/s- again", seq+"/s-0000000001", func() string { return created(a.Create(seq+"/s-", nil, zk.FlagSequence, world)) })
	do("create ephemeral sequential "+seq+"/es-", seq+"/es-0000000002", func() string {
		return created(a.Create(seq+"/es-", nil, zk.FlagEphemeral|zk.FlagSequence, world))
	})
	do("children "+seq, "[es-0000000002 s-0000000000 s-0000000001]", func() string { return children(a.Children(seq)) })
	do("get "+p, `"v0" version=0`, func() string { return data(a.Get(p)) })
	do("set "+p+" version 0", "version=1", func() string { return version(a.Set(p, []byte("v1"), 0)) })
	do("set "+p+" version 0 again", "BadVersion", func() string { return version(a.Set(p, []byte("stale"), 0)) })
	do("set "+p+" version -1", "version=2", func() string { return version(a.Set(p, []byte("v2"), -1)) })
	do("get "+p, `"v2" version=2`, func() string { return data(a.Get(p)) })
	do("delete "+p+" version 7", "BadVersion", func() string { return name(a.Delete(p, 7)) })
	missing := base + "/missing"
	do("get, set, delete "+missing, "NoNode NoNode NoNode", func() string {
		return data(a.Get(missing)) + " " + version(a.Set(missing, nil, -1)) + " " + name(a.Delete(missing, -1))
	})
	do("create "+p+" again", "NodeExists", func() string { return created(a.Create(p, nil, 0, world)) })
	do("create "+missing+"/x", "NoNode", func() string { return created(a.Create(missing+"/x", nil, 0, world)) })
	do("create a child of the ephemeral "+base+"/e", "NoChildrenForEphemerals", func() string { return created(a.Create(base+"/e/x", nil, 0, world)) })
	do("delete "+seq+", which has children", "NotEmpty", func() string { return name(a.Delete(seq, -1)) })
}

func watches(a, b *client) {
	w := base + "/w"
	var ch, dataCh, childCh <-chan zk.Event
	do("existsW "+w+" (missing)", "false", func() string { return a.existsW(w, &ch) })
	do("other session creates "+w, w, func() string { return created(b.Create(w, nil, 0, world)) })
	do("exists watch fires", "EventNodeCreated "+w, func() string { return wait(ch) })
	do("getW "+w, `"" version=0`, func() string { return a.getW(w, &ch) })
	do("other session sets "+w, "version=1", func() string { return version(b.Set(w, []byte("x"), -1)) })
	do("data watch fires", "EventNodeDataChanged "+w, func() string { return wait(ch) })
	do("childrenW "+w, "[]", func() string { return a.childrenW(w, &ch) })
	do("other session creates "+w+"/c", w+"/c", func() string { return created(b.Create(w+"/c", nil, 0, world)) })
	do("child watch fires", "EventNodeChildrenChanged "+w, func() string { return wait(ch) })
	do("getW "+w+"/c, childrenW "+w, `"" version=0 [c]`, func() string { return a.getW(w+"/c", &dataCh) + " " + a.childrenW(w, &childCh) })
	do("other session deletes "+w+"/c", "ok", func() string { return name(b.Delete(w+"/c", -1)) })
	do("data and child watches fire", "EventNodeDeleted "+w+"/c, EventNodeChildrenChanged "+w, func() string {
		return wait(dataCh) + ", " + wait(childCh)
	})
	do("events in arrival order", "EventNodeCreated "+w+", EventNodeDataChanged "+w+", EventNodeChildrenChanged "+w+
		", EventNodeDeleted "+w+"/c, EventNodeChildrenChanged "+w, func() string { return strings.Join(a.takeEvents(), ", ") })
	// Watches are one-time: setting w again sends nothing, and the watch on w2 fires after
	// anything that set could have caused.
	do("existsW "+w+"2; other session sets "+w+", creates "+w+"2", "false, EventNodeCreated "+w+"2", func() string {
		result := a.existsW(w+"2", &ch)
		b.Set(w, []byte("y"), -1)
		b.Create(w+"2", nil, 0, world)
		return result + ", " + wait(ch)
	})
	do("events since (watches are one-time)", "EventNodeCreated "+w+"2", func() string { return strings.Join(a.takeEvents(), ", ") })
}

func multis(a *client) {
	m := base + "/m"
	do("multi create m1, create m2, set m1 v0, check m2 v0, delete m2", "ok; ok "+m+"1; ok "+m+"2; ok version=1; ok; ok", func() string {
		return multi(a.Multi(&zk.CreateRequest{Path: m + "1", Data: []byte("x"), Acl: world},
			&zk.CreateRequest{Path: m + "2", Acl: world},
			&zk.SetDataRequest{Path: m + "1", Data: []byte("y"), Version: 0},
			&zk.CheckVersionRequest{Path: m + "2", Version: 0},
			&zk.DeleteRequest{Path: m + "2", Version: -1}))
	})
	do("multi create m3, set m1 v99, create m4", "BadVersion; ok; BadVersion; Unknown", func() string {
		return multi(a.Multi(&zk.CreateRequest{Path: m + "3", Acl: world},
			&zk.SetDataRequest{Path: m + "1", Data: []byte("z"), Version: 99},
			&zk.CreateRequest{Path: m + "4", Acl: world}))
	})
	do("after the failed multi: exists m3, exists m4, get m1", `false false "y" version=1`, func() string {
		return exists(a.Exists(m+"3")) + " " + exists(a.Exists(m+"4")) + " " + data(a.Get(m+"1"))
	})
}

func auth(a, b *client) {
	secret, readable, authNode := base+"/secret", base+"/readable", base+"/auth"
	alice := zk.DigestACL(zk.PermAll, "alice", "secret")
	aliceACL := "digest:" + alice[0].ID + ":31"
	do("create "+authNode+" with the auth ACL, unauthenticated", "InvalidACL", func() string {
		return created(b.Create(authNode, nil, 0, zk.AuthACL(zk.PermAll)))
	})
	do("addAuth digest alice:secret", "ok", func() string { return name(a.AddAuth("digest", []byte("alice:secret"))) })
	do("create "+secret+" with alice's digest ACL", secret, func() string { return created(a.Create(secret, []byte("s3cret"), 0, alice)) })
	do("create "+readable+": alice all, world read", readable, func() string {
		return created(a.Create(readable, []byte("r"), 0, append(alice, zk.WorldACL(zk.PermRead)...)))
	})
	do("create "+authNode+" with the auth ACL, as alice", authNode, func() string {
		return created(a.Create(authNode, nil, 0, zk.AuthACL(zk.PermAll)))
	})
	do("getACL "+authNode, aliceACL, func() string { return acls(a.GetACL(authNode)) })
	do("other session (no auth): sync, get "+secret, "NoAuth", func() string { b.Sync(secret); return data(b.Get(secret)) })
	do("other session: set "+secret, "NoAuth", func() string { return version(b.Set(secret, nil, -1)) })
	do("other session: getACL "+secret, "NoAuth", func() string { return acls(b.GetACL(secret)) })
	do("other session: get "+readable, `"r" version=0`, func() string { return data(b.Get(readable)) })
	do("other session: getACL "+readable+" (no admin: digests hidden)", "digest:alice:x:31, world:anyone:1", func() string {
		return acls(b.GetACL(readable))
	})
	do("getACL "+readable+" as alice", aliceACL+", world:anyone:1", func() string { return acls(a.GetACL(readable)) })
	var c *client
	do("new session: addAuth alice:wrong, get "+secret, "ok, NoAuth", func() string {
		c = connect()
		err := c.AddAuth("digest", []byte("alice:wrong"))
		c.Sync(secret)
		return name(err) + ", " + data(c.Get(secret))
	})
	do("same session: addAuth alice:secret, get "+secret, `ok, "s3cret" version=0`, func() string {
		err := c.AddAuth("digest", []byte("alice:secret"))
		return name(err) + ", " + data(c.Get(secret))
	})
	do("close that session", "ok", func() string { c.Close(); return "ok" })
}

func syncThenGet(a, b *client) {
	p := base + "/p"
	do("other session sets "+p, "version=3", func() string { return version(b.Set(p, []byte("from-b"), -1)) })
	do("sync "+p, p, func() string { return created(a.Sync(p)) })
	do("get "+p, `"from-b" version=3`, func() string { return data(a.Get(p)) })
}

func reconnect(a, b *client) {
	p, r, w, q := base+"/p", base+"/r", base+"/w", base+"/q"
	var pCh, rCh, wCh, qCh <-chan zk.Event
	var session int64
	var resume func()
	do("create "+q, q, func() string { return created(a.Create(q, nil, 0, world)) })
	do("getW "+p+", existsW "+r+", childrenW "+w+", getW "+q, `"from-b" version=3, false, [], "" version=0`, func() string {
		return strings.Join([]string{a.getW(p, &pCh), a.existsW(r, &rCh), a.childrenW(w, &wCh), a.getW(q, &qCh)}, ", ")
	})
	do("drop the TCP connection, hold the reconnection", "connected: false", func() string {
		session, resume = a.SessionID(), a.drop()
		return fmt.Sprint("connected: ", a.State() == zk.StateHasSession)
	})
	do("other session sets "+p+", creates "+r+" and "+w+"/d", "ok ok ok", func() string {
		_, err1 := b.Set(p, []byte("away"), -1)
		_, err2 := b.Create(r, nil, 0, world)
		_, err3 := b.Create(w+"/d", nil, 0, world)
		return name(err1) + " " + name(err2) + " " + name(err3)
	})
	do("reconnect: same session", "true", func() string {
		resume()
		a.waitState(zk.StateHasSession)
		return fmt.Sprint(a.SessionID() == session)
	})
	do("watches set before the drop fire for the changes missed",
		"EventNodeDataChanged "+p+", EventNodeCreated "+r+", EventNodeChildrenChanged "+w,
		func() string { return wait(pCh) + ", " + wait(rCh) + ", " + wait(wCh) })
	do("other session sets "+q+"; the watch kept across the reconnect fires", "EventNodeDataChanged "+q, func() string {
		b.Set(q, []byte("later"), -1)
		return wait(qCh)
	})
	do("events since the drop, sorted (each watch fired once)", "EventNodeChildrenChanged "+w+", EventNodeCreated "+r+
		", EventNodeDataChanged "+p+", EventNodeDataChanged "+q, func() string {
		events := a.takeEvents()
		sort.Strings(events)
		return strings.Join(events, ", ")
	})
}

// authAfterReconnect: go-zookeeper sends its credentials again on reconnecting, and AddAuth
// works on the new connection.
func authAfterReconnect(a, b *client) {
	do("get "+base+"/secret (credentials sent again on reconnect)", `"s3cret" version=0`, func() string { return data(a.Get(base + "/secret")) })
	do("addAuth digest bob:pw after the reconnect", "ok", func() string { return name(a.AddAuth("digest", []byte("bob:pw"))) })
	do("create and get "+base+"/bob with bob's digest ACL", `ok, "b" version=0`, func() string {
		_, err := a.Create(base+"/bob", []byte("b"), 0, zk.DigestACL(zk.PermAll, "bob", "pw"))
		return name(err) + ", " + data(a.Get(base+"/bob"))
	})
	do("other session: ephemeral "+base+"/e survived the reconnect", "true", func() string {
		b.Sync(base + "/e")
		return exists(b.Exists(base + "/e"))
	})
}

func ephemeralsVanish(a, b *client) {
	gone, e := base+"/gone", base+"/e"
	var c *client
	var ch <-chan zk.Event
	do("new session creates ephemeral "+gone, gone, func() string {
		c = connect()
		return created(c.Create(gone, nil, zk.FlagEphemeral, world))
	})
	do("other session: sync, existsW "+gone, "true", func() string { b.Sync(gone); return b.existsW(gone, &ch) })
	do("close the new session; the watch fires", "EventNodeDeleted "+gone, func() string { c.Close(); return wait(ch) })
	do("other session: exists "+gone, "false", func() string { return exists(b.Exists(gone)) })
	do("other session: sync, existsW "+e, "true", func() string { b.Sync(e); return b.existsW(e, &ch) })
	do("close the first session; the watch fires", "EventNodeDeleted "+e, func() string { a.Close(); return wait(ch) })
	do("other session: children "+base+"/seq", "[s-0000000000 s-0000000001]", func() string { return children(b.Children(base + "/seq")) })
}
