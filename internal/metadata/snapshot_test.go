package metadata

import (
	"bytes"
	"errors"
	"testing"
)

func TestSnapshotRoundTrip(t *testing.T) {
	images := map[string]*Image{"empty": Empty(), "test image": testImage(t, 30, 7)}
	for seed := uint64(1); seed <= 20; seed++ {
		g := newGen(seed)
		im := Empty()
		for range 40 {
			im, _ = mustApply(t, im, g.batch(im)...)
		}
		images["history "+itoa(int(seed))] = im
	}
	for name, im := range images {
		snap, err := AppendSnapshot(nil, im)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		back, err := DecodeSnapshot(snap)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := imagesEqual(back, im); err != nil {
			t.Fatalf("%s: image -> snapshot -> image differs: %v", name, err)
		}
		checkImage(t, back)
		// The same image writes the same bytes, however it was built.
		again, _ := AppendSnapshot(nil, back)
		if !bytes.Equal(again, snap) {
			t.Fatalf("%s: a rebuilt image writes another snapshot", name)
		}
		// And it goes on from there like the original.
		if len(im.TopicNames()) > 0 {
			g := newGen(7)
			rs := g.batch(im)
			a, _ := mustApply(t, im, rs...)
			b, _ := mustApply(t, back, rs...)
			if err := imagesEqual(a, b); err != nil {
				t.Fatalf("%s: after one more batch: %v", name, err)
			}
		}
	}
}

func TestDecodeSnapshotRefusesBadInput(t *testing.T) {
	good, _ := AppendSnapshot(nil, testImage(t, 1, 1))
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrCorrupt},
		{"a batch", func() []byte { b, _ := AppendBatch(nil, []Record{&NoOpRecord{}}); return b }(), ErrCorrupt},
		{"truncated", good[:len(good)-3], ErrCorrupt},
		{"trailing bytes", append(bytes.Clone(good), 0), ErrCorrupt},
		{"count beyond its bytes", append(bytes.Clone(good[:17]), 0xff, 0xff, 0x03), ErrCorrupt},
		{"records that do not apply", func() []byte {
			b := bytes.Clone(good[:17])
			b = append(b, 1)
			b, _ = appendRecords(b, []Record{&RemoveTopicRecord{}})
			return b
		}(), ErrInvalid},
	} {
		if im, err := DecodeSnapshot(tc.b); !errors.Is(err, tc.want) {
			t.Errorf("%s: image %v, error %v, want %v", tc.name, im != nil, err, tc.want)
		}
	}
}

func FuzzDecodeSnapshot(f *testing.F) {
	for _, im := range []*Image{Empty(), testImage(f, 2, 2)} {
		b, _ := AppendSnapshot(nil, im)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		im, err := DecodeSnapshot(data)
		if err != nil {
			var unsupported *UnsupportedError
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrInvalid) && !errors.As(err, &unsupported) {
				t.Fatalf("error %v is neither ErrCorrupt, ErrInvalid nor UnsupportedError", err)
			}
			return
		}
		checkImage(t, im)
		b, err := AppendSnapshot(nil, im)
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeSnapshot(b)
		if err != nil {
			t.Fatal(err)
		}
		if err := imagesEqual(back, im); err != nil {
			t.Fatal(err)
		}
	})
}
