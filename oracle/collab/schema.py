"""Print the JSON Schema of the collaboration description file (docs/collab.schema.json)."""
import json

from oracle.collab.description import json_schema

if __name__ == "__main__":
    print(json.dumps(json_schema(), indent=2, sort_keys=True))
