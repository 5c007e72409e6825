package broker

import "github.com/vltava/vltava/internal/config"

// openServing opens a broker as a server does: Open, then SetAdvertised with its
// configured listeners, which registers it with its controller and (a quorum of one)
// waits until it is unfenced, so that topics can be placed on it.
func openServing(cfg config.Broker, opts Options) (*Broker, error) {
	b, err := Open(cfg, opts)
	if err != nil {
		return nil, err
	}
	if err := b.SetAdvertised(b.Advertised()); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}
