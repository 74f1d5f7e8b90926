package broker

import (
	"reflect"
	"unsafe"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// mochi keeps the deliveries queued for a client in an unexported channel,
// ClientState.outbound, and tells no one how many wait. The connection
// wrapper needs to know (coalescingConn.hold): the offset of the field is
// found once by reflection, its type checked, and queued reads the
// channel's length; should mochi's layout change, outboundKnown is false
// (TestOutboundQueue fails) and writes are no longer held.
var outboundOffset, outboundKnown = func() (uintptr, bool) {
	f, ok := reflect.TypeFor[mqtt.ClientState]().FieldByName("outbound")
	if !ok || f.Type != reflect.TypeFor[chan *packets.Packet]() {
		return 0, false
	}
	return f.Offset, true
}()

// queued is how many deliveries mochi has queued for cl and not yet
// handed to WritePacket.
func queued(cl *mqtt.Client) int {
	if !outboundKnown {
		return 0
	}
	return len(*(*chan *packets.Packet)(unsafe.Add(unsafe.Pointer(&cl.State), outboundOffset)))
}
