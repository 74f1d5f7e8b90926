// Package deps pins the modules the issues in flight will import, so that
// parallel work never edits go.mod at once. Delete it once each is imported.
package deps

import (
	_ "github.com/compose-spec/compose-go/v2/loader"
	_ "github.com/eclipse/paho.golang/paho"
	_ "github.com/eclipse/paho.mqtt.golang"
	_ "github.com/moby/moby/client"
	_ "github.com/mochi-mqtt/server/v2"
)
