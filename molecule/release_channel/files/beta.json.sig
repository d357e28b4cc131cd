stand-in signature of updates/beta.json (not a real signature)
