
# --- appended by hack/docs-build.sh from hack/docsite/conf.py ---
# The site builds offline: no intersphinx (it downloads inventories), MyST for the Markdown
# pages copied from README.md and docs/, and nothing fetched by the theme.
import re

from docutils import nodes

extensions = ['sphinx_antsibull_ext', 'myst_parser']
intersphinx_mapping = {}
source_suffix = {'.rst': 'restructuredtext', '.md': 'markdown'}
# README.md and the guides link each other by their .md paths (MyST makes those page links) and
# link headings of other pages, so headings get anchors.
myst_heading_anchors = 3

# Without intersphinx, references to the Ansible docsite (other collections' plugins, the
# reference appendices) are resolved here, to the pages intersphinx would have linked.
ANSIBLE_DOCSITE = 'https://docs.ansible.com/projects/ansible/devel/'
ANSIBLE_DOCSITE_LABELS = {
    'ansible_configuration_settings': 'reference_appendices/config.html',
    'common_return_values': 'reference_appendices/common_return_values.html',
}
OTHER_COLLECTION_PLUGIN = re.compile(
    r'ansible_collections\.(?P<namespace>\w+)\.(?P<name>\w+)\.(?P<page>\w+?)(?:__.*)?$')


def resolve_on_ansible_docsite(app, env, node, contnode):
    if node.get('refdomain') != 'std' or node.get('reftype') != 'ref':
        return None
    target = node['reftarget']
    page = ANSIBLE_DOCSITE_LABELS.get(target)
    plugin = OTHER_COLLECTION_PLUGIN.match(target)
    if page is None and plugin and plugin['namespace'] != 'inference_gateway':
        page = 'collections/{namespace}/{name}/{page}.html'.format(**plugin.groupdict())
    if page is None:
        return None
    reference = nodes.reference('', '', internal=False, refuri=ANSIBLE_DOCSITE + page)
    reference.append(contnode)
    return reference


def setup(app):
    app.connect('missing-reference', resolve_on_ansible_docsite)
