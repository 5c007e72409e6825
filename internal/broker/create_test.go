package broker

import (
	"errors"
	"os"
	"slices"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/vltava/vltava/internal/vfs"
)

// holdMkdir blocks the creation of one directory until released.
type holdMkdir struct {
	vfs.FS
	path    string
	reached chan struct{}
	release chan struct{}
	once    sync.Once
}

func (f *holdMkdir) MkdirAll(p string, perm os.FileMode) error {
	if p == f.path {
		f.once.Do(func() {
			close(f.reached)
			<-f.release
		})
	}
	return f.FS.MkdirAll(p, perm)
}

func newHold(fsys vfs.FS, path string) *holdMkdir {
	return &holdMkdir{FS: fsys, path: path, reached: make(chan struct{}), release: make(chan struct{})}
}

// TestCreationIsAnsweredOnceHosted: a topic's creation is committed at once and
// answered once this node has opened its partitions (the reconciliation), so its client
// finds them served; a second creation of it meanwhile answers TOPIC_ALREADY_EXISTS at
// once, the topic being committed. Close waits for the hosting under way, and a creation
// waiting for it then answers (the topic is committed) without waiting for Close.
func TestCreationIsAnsweredOnceHosted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		holdZ := newHold(vfs.NewMem(), "/data/z-0")
		holdX := newHold(holdZ, "/data/x-3")
		b := mustOpenBroker(t, holdX, nil, map[string]string{"log.cleaner.enable": "false"})
		create := func(name string, n int32) chan error {
			ch := make(chan error, 1)
			go func() {
				_, err := b.CreateTopic(name, n, 1, nil, false)
				ch <- err
			}()
			return ch
		}
		notYet := func(what string, ch chan error) {
			t.Helper()
			synctest.Wait()
			select {
			case err := <-ch:
				t.Fatalf("%s returned before the hosting was done: %v", what, err)
			default:
			}
		}

		first := create("x", 8)
		<-holdX.reached
		if _, err := b.CreateTopic("x", 1, 1, nil, false); !errors.Is(err, kerr.TopicAlreadyExists) {
			t.Fatalf("second creation while the first is being hosted: %v", err)
		}
		if b.Image().Topic("x") == nil {
			t.Fatal("x is not committed while its partitions are being opened")
		}
		notYet("first creation", first)
		close(holdX.release)
		if err := <-first; err != nil {
			t.Fatal(err)
		}
		if ht := b.Topic("x"); ht == nil || len(ht.Partitions) != 8 || slices.Contains(ht.Partitions, nil) {
			t.Fatalf("x hosted as %+v when its creation returned", ht)
		}

		third := create("z", 1)
		<-holdZ.reached
		notYet("creation of z", third)
		closed := make(chan error, 1)
		go func() { closed <- b.Close() }()
		if err := <-third; err != nil {
			t.Fatalf("creation of z once Close began: %v", err)
		}
		notYet("Close", closed)
		close(holdZ.release)
		if err := <-closed; err != nil {
			t.Fatal(err)
		}
	})
}
