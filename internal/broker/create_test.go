package broker

import (
	"errors"
	"os"
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

// TestChangesOfATopicWaitForItsCreation: while a topic is being created, a second
// creation of it waits for the first to be decided (then answers TOPIC_ALREADY_EXISTS
// with the topic there), and so does its deletion; other topics do not wait; Close waits
// for the creation, and the changes that waited for it find the broker shutting down.
func TestChangesOfATopicWaitForItsCreation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		holdZ := newHold(vfs.NewMem(), "/data/z-0")
		holdX := newHold(holdZ, "/data/x-3")
		b := mustOpenBroker(t, holdX, nil, map[string]string{"log.cleaner.enable": "false"})
		create := func(name string, n int32) chan error {
			ch := make(chan error, 1)
			go func() {
				_, err := b.CreateTopic(name, n, 1, nil, false)
				if err == nil && b.Topic(name) == nil {
					err = errors.New(name + " not hosted when its creation returned")
				}
				ch <- err
			}()
			return ch
		}
		notYet := func(what string, ch chan error) {
			t.Helper()
			synctest.Wait()
			select {
			case err := <-ch:
				t.Fatalf("%s returned before the creation was decided: %v", what, err)
			default:
			}
		}

		first := create("x", 8)
		<-holdX.reached
		second := create("x", 1)
		notYet("second creation", second)
		if _, err := b.CreateTopic("y", 1, 1, nil, false); err != nil {
			t.Fatalf("another topic while x is being created: %v", err)
		}
		close(holdX.release)
		if err := <-first; err != nil {
			t.Fatal(err)
		}
		if err := <-second; !errors.Is(err, kerr.TopicAlreadyExists) {
			t.Fatalf("second creation: %v", err)
		}

		third := create("z", 1)
		<-holdZ.reached
		deleted := make(chan error, 1)
		go func() {
			_, err := b.DeleteTopic("z")
			deleted <- err
		}()
		notYet("deletion", deleted)
		closed := make(chan error, 1)
		go func() { closed <- b.Close() }()
		notYet("Close", closed)
		close(holdZ.release)
		if err := <-third; err != nil {
			t.Fatal(err)
		}
		if err := <-deleted; !errors.Is(err, ErrShuttingDown) {
			t.Fatalf("deletion that waited for Close: %v", err)
		}
		if err := <-closed; err != nil {
			t.Fatal(err)
		}
	})
}
